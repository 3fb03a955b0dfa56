"""An OpenAI-compatible HTTP server for one local model, so a critic (or any role) is loaded once
and shared by many workers.

    superalign serve --role critic --port 8000 [--config FILE] [--host 127.0.0.1] [--api-key-env VAR]

Endpoints (the subset `superalign.models.http.OpenAIChat`, vLLM clients and the openai SDK use):

- `POST /v1/chat/completions`: model, messages, max_tokens (or max_completion_tokens), temperature,
  top_p, seed, stream (+ stream_options.include_usage), logprobs + top_logprobs (0-5).
- `POST /v1/completions`: prompt (a string or a list of up to 32), max_tokens (0 allowed), echo,
  logprobs (0-5), temperature, top_p, seed, stream. With `echo` and `logprobs`, `choices[i].logprobs`
  holds `tokens`, `token_logprobs` (None for the first token), `top_logprobs` and `text_offset` of the
  prompt (and the completion) - the way `OpenAIChat.logprobs` asks for prompt log-probs.
- `GET /v1/models`, `GET /health` (503 when the model thread is dead or stuck), `GET /stats`.

Any other OpenAI parameter is a 400 naming it unless it has its neutral value (`n: 1`, `stop: null`,
...): nothing is silently ignored. Log-probs are the model's own distribution (before temperature and
top-p), computed by a scoring pass over prompt + completion.

Layout: `schema` (request models, validation), `batcher` (the model thread: micro-batching,
isolation, cancellation, health), `service` (requests -> jobs -> responses, SSE streaming),
`app` (FastAPI + uvicorn, the guard middleware, `Server`, `from_config`). docs/security.md lists
the limits and what each abusive request gets.
"""
from superalign.serve.app import Server, create_app, from_config
from superalign.serve.batcher import Batcher, Job
from superalign.serve.schema import BadRequest
from superalign.serve.service import Service

__all__ = ["BadRequest", "Batcher", "Job", "Server", "Service", "create_app", "from_config"]
