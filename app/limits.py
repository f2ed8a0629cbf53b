"""Named limits of the app: what one request may ask for, and how much the server holds at once.

Every check in the handlers refers to these names, and every error message quotes them, so a
user who hits one knows which limit it was and what to do. Raise them for a private deployment
with more memory or cores; keep them for a public Space on 2 CPU cores.
"""

MAX_PROMPT_CHARS = 4_000  # characters in a prompt
MAX_RESPONSE_CHARS = 4_000  # characters in a response (chosen and rejected each)
MAX_TOKENS = 512  # scored response tokens per text (encoder RMs score one prefix per token)
MAX_LINK_CHARS = 8_000  # a "Copy link to this view" link longer than this gets a warning (servers and chat apps cut them)
MAX_UPLOAD_BYTES = 100_000  # a text file uploaded into the response box (also launch(max_file_size=...))
MAX_MODEL_PARAMS = 1_500_000_000  # hub models larger than this are refused before download
MODEL_CACHE_SIZE = 2  # reward models kept loaded (LRU); two so that "two reward models" fits
POLICY_CACHE_SIZE = 1  # causal-LM policies kept loaded (Policies tab)
CONCURRENCY_LIMIT = 2  # events running at once (one per CPU core of a basic Space)
MAX_QUEUE_SIZE = 32  # requests waiting in the queue before new ones are turned away
FILE_TTL_SECONDS = 900  # downloads (CSV / JSON / HTML, written only when asked for) are deleted after this long
STEP_INTERVAL_SECONDS = 0.6  # "play" speed of the step-through
SESSION_TTL_SECONDS = 3_600  # a session's state (model choice, last result) is dropped after this long unused
MAX_SESSIONS = 200  # sessions whose state the server keeps; the oldest are dropped beyond this
GPU_DURATION_SECONDS = 60  # ZeroGPU: the longest a scoring or generation call may hold the GPU
MAX_LIVE_TRAINING = 1  # "train live" runs at once; more requests wait in the queue
MAX_DATASET_ROWS = 500  # rows the Dataset tab scores in one run (local mode)
PUBLIC_MAX_DATASET_ROWS = 150  # the same in public mode
MAX_DATASET_BYTES = 5_000_000  # an uploaded dataset file (local mode)
PUBLIC_MAX_DATASET_BYTES = 1_000_000  # the same in public mode
