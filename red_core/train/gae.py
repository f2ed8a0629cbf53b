"""Advantages: GAE (PPO) and discounted returns (REINFORCE++), masked statistics; each with the plain loop it must equal.

All tensors are (B, T): B rollouts, T response positions, right-padded; `mask` is 1 on the tokens a
rollout actually generated (up to and including its EOS) and 0 after. Position t is the state
s_t = (x, y_<t) and the action y_t.

    δ_t = r_t + γ V(s_{t+1}) − V(s_t),       V(s_{T+1}) = 0 (the episode ends after the last token)
    A_t = δ_t + γ λ A_{t+1}                  (A = 0 after the last token)
    return_t = A_t + V(s_t)                  (the critic's regression target)

REINFORCE++ (Hu 2025) has no critic: the advantage is the return G_t = Σ_{s≥t} γ^{s−t} r_s itself,
whitened over the batch's response tokens by the trainer. With γ = 1 and RED credit,
G_t = R(x, y) − R(x, y_<t) − (KL still to come): each token sees the score change from itself on,
while with sparse credit every token of a response sees the same terminal reward R(x, y).
"""

from __future__ import annotations

import torch


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0,
        lam: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and returns, (B, T) each; zero where mask is 0. Vectorised over the batch."""
    mask = mask.to(rewards.dtype)  # (B, T)
    rewards, values = rewards * mask, values * mask  # (B, T): padding holds no reward and no value
    B, T = rewards.shape
    advantages = torch.zeros_like(rewards)  # (B, T)
    running = torch.zeros(B, dtype=rewards.dtype, device=rewards.device)  # (B,) A_{t+1}
    for t in reversed(range(T)):
        next_value = values[:, t + 1] if t + 1 < T else torch.zeros_like(running)  # (B,) 0 past the end
        delta = rewards[:, t] + gamma * next_value - values[:, t]  # (B,)
        running = delta + gamma * lam * running  # (B,)
        advantages[:, t] = running
    advantages = advantages * mask  # (B, T)
    return advantages, (advantages + values) * mask


def gae_loop(rewards, values, mask, gamma: float = 1.0, lam: float = 0.95) -> tuple[list[list[float]], list[list[float]]]:
    """Reference: one rollout at a time, plain Python floats, only over the tokens it generated."""
    all_adv, all_ret = [], []
    for r_row, v_row, m_row in zip(rewards.tolist(), values.tolist(), mask.tolist()):
        n = int(sum(m_row))
        adv = [0.0] * len(r_row)
        next_adv, next_value = 0.0, 0.0
        for t in reversed(range(n)):
            delta = r_row[t] + gamma * next_value - v_row[t]
            next_adv = delta + gamma * lam * next_adv
            adv[t] = next_adv
            next_value = v_row[t]
        all_adv.append(adv)
        all_ret.append([adv[t] + v_row[t] if t < n else 0.0 for t in range(len(r_row))])
    return all_adv, all_ret


def reinforce_returns(rewards: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0) -> torch.Tensor:
    """G_t = Σ_{s≥t} γ^{s−t} r_s over the generated tokens, (B, T); zero where mask is 0. Fully vectorised."""
    rewards = rewards * mask.to(rewards.dtype)  # (B, T): padding holds no reward
    t = torch.arange(rewards.shape[1], device=rewards.device)  # (T,)
    lag = t[None, :] - t[:, None]  # (T, T) s − t for row t, column s
    discount = torch.pow(torch.tensor(gamma, dtype=rewards.dtype, device=rewards.device), lag.clamp(min=0))  # (T, T)
    discount = discount * (lag >= 0).to(rewards.dtype)  # (T, T) γ^{s−t} for s ≥ t, 0 before t
    return (rewards @ discount.T) * mask.to(rewards.dtype)  # (B, T): G[b, t] = Σ_s discount[t, s] r[b, s]


def reinforce_returns_loop(rewards, mask, gamma: float = 1.0) -> list[list[float]]:
    """Reference: one rollout at a time, plain Python floats, only over the tokens it generated."""
    out = []
    for r_row, m_row in zip(rewards.tolist(), mask.tolist()):
        n = int(sum(m_row))
        ret = [0.0] * len(r_row)
        running = 0.0
        for t in reversed(range(n)):
            running = r_row[t] + gamma * running
            ret[t] = running
        out.append(ret)
    return out


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the positions where mask is 1 (a scalar)."""
    mask = mask.to(x.dtype)
    return (x * mask).sum() / mask.sum().clamp(min=1.0)


def masked_var(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Unbiased variance over the positions where mask is 1 (0 with fewer than two)."""
    mask = mask.to(x.dtype)
    n = mask.sum()
    mean = masked_mean(x, mask)
    return (((x - mean) ** 2) * mask).sum() / (n - 1).clamp(min=1.0)


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(x - mean) / std over the masked positions; zero where mask is 0."""
    mean, var = masked_mean(x, mask), masked_var(x, mask)
    return (x - mean) * torch.rsqrt(var + eps) * mask.to(x.dtype)


def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> float:
    """1 - Var(returns - values) / Var(returns) over the masked positions (1 = perfect critic)."""
    var_ret = masked_var(returns, mask)
    if float(var_ret) == 0.0:
        return float("nan")
    return float(1.0 - masked_var(returns - values, mask) / var_ret)
