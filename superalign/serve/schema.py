"""Request bodies of the OpenAI endpoints, validated at parse time.

Everything a client can get wrong is caught here, before a job reaches the model thread:
non-finite or out-of-range numbers, strings where numbers belong (no "1" -> 1 coercion),
seeds torch cannot take, empty prompts, budgets beyond the model's context. OpenAI parameters
this server does not implement are refused with a 400 naming them; a neutral value (`stop: null`,
`presence_penalty: 0`, `n: 1`, ...) is accepted, since it asks for nothing we ignore.
"""
from __future__ import annotations

import json
import math
from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError, field_validator

MAX_TOP_LOGPROBS = 5
MAX_PROMPTS = 32            # prompts in one /v1/completions request
MAX_MESSAGES = 256
SEED_MIN, SEED_MAX = -(2 ** 63), 2 ** 64 - 1   # what torch.Generator.manual_seed accepts

# OpenAI parameters we accept only at their neutral value (anything else would be silently ignored)
NEUTRAL: dict[str, tuple | None] = {"n": (1,), "stop": (None, "", []), "presence_penalty": (0, 0.0), "frequency_penalty": (0, 0.0),
           "logit_bias": (None, {}), "best_of": (1,), "suffix": (None, ""), "user": None,
           "response_format": (None, {"type": "text"}), "parallel_tool_calls": None, "tools": (None, []),
           "tool_choice": (None, "none"), "service_tier": None, "store": (None, False), "metadata": None}
# `user`, `service_tier`, `store: false` and `metadata` only label a request; they change no output
IGNORABLE = {"user", "service_tier", "metadata", "parallel_tool_calls"}


class BadRequest(Exception):
    """A client error: `status` (400/404/413/...), an OpenAI `code` string, the `param` at fault."""

    def __init__(self, message: str, status: int = 400, param: str | None = None, code: str = "invalid_request"):
        super().__init__(message)
        self.status, self.param, self.code = status, param, code

    def body(self) -> dict:
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        return {"error": {"message": str(self), "type": kind, "param": self.param, "code": self.code}}


def _no_constants(name: str):
    raise ValueError(f"{name} is not valid JSON (numbers must be finite)")


def loads(raw: bytes) -> dict:
    """The body as a JSON object; NaN/Infinity literals and non-objects are 400s."""
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
    except UnicodeDecodeError:
        raise BadRequest("the request body is not UTF-8", code="invalid_json") from None
    except (ValueError, RecursionError) as e:
        raise BadRequest(f"the request body is not valid JSON: {str(e)[:200]}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object", code="invalid_json")
    _encodable(body)
    return body


def _encodable(obj) -> None:
    """JSON may escape a lone surrogate (`"\\ud800"`) that no tokenizer can encode: a 400 naming it, not a 500."""
    stack = [obj]
    while stack:
        x = stack.pop()
        if isinstance(x, str):
            try:
                x.encode("utf-8")
            except UnicodeEncodeError as e:
                raise BadRequest(f"a string holds {x[e.start:e.end]!a}, a lone UTF-16 surrogate that is not text",
                                 code="invalid_json") from None
        elif isinstance(x, dict):
            stack += list(x.keys()) + list(x.values())
        elif isinstance(x, list):
            stack += x


class _Common(BaseModel):
    """Sampling parameters shared by both endpoints (strict types, finite numbers)."""
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    model: Optional[str] = Field(None, max_length=256)
    max_tokens: Optional[StrictInt] = None
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: Optional[StrictInt] = Field(None, ge=SEED_MIN, le=SEED_MAX)
    stream: StrictBool = False
    stream_options: Optional[dict] = None

    @field_validator("stream_options")
    @classmethod
    def _stream_options(cls, v):
        if v is not None and (set(v) - {"include_usage"} or not isinstance(v.get("include_usage", False), bool)):
            raise ValueError("only {'include_usage': true|false} is supported")
        return v


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    role: Literal["system", "developer", "user", "assistant"]
    content: Union[str, list[dict]]
    name: Optional[str] = Field(None, max_length=256)

    @field_validator("content")
    @classmethod
    def _text(cls, v):
        if isinstance(v, list):  # content parts: text only
            if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in v):
                raise ValueError("content parts must all be {'type': 'text', 'text': ...}; images/audio are not supported")
            v = "".join(p["text"] for p in v)
        return v


class ChatRequest(_Common):
    messages: list[Message] = Field(min_length=1, max_length=MAX_MESSAGES)
    max_completion_tokens: Optional[StrictInt] = None
    logprobs: StrictBool = False
    top_logprobs: Optional[StrictInt] = Field(None, ge=0, le=MAX_TOP_LOGPROBS)


class CompletionRequest(_Common):
    prompt: Union[str, list[str]]
    echo: StrictBool = False
    logprobs: Optional[StrictInt] = Field(None, ge=0, le=MAX_TOP_LOGPROBS)

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, v):
        ps = [v] if isinstance(v, str) else v
        if not ps or len(ps) > MAX_PROMPTS:
            raise ValueError(f"give 1 to {MAX_PROMPTS} prompts")
        if any(p == "" for p in ps):
            raise ValueError("prompts must not be empty")
        return v


_UNION_TAGS = {"str", "list[str]", "list[dict[any,any]]", "int", "float"}


def _same(a, b) -> bool:
    """Equal and of the same JSON type (so `n: true` is not taken for `n: 1`)."""
    num = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b and (type(a) is type(b) or (isinstance(a, num) and isinstance(b, num)))


def _drop_neutral(body: dict) -> dict:
    out = {}
    for k, v in body.items():
        if k in NEUTRAL:
            if k in IGNORABLE or any(_same(v, n) for n in NEUTRAL[k] or ()):
                continue
            raise BadRequest(f"parameter `{k}`={json.dumps(v)[:80]} is not supported by superalign serve "
                             f"(only its default is); leave it out", param=k, code="unsupported_parameter")
        out[k] = v
    return out


def parse(model: type[ChatRequest] | type[CompletionRequest], body: dict, context: int, default_max: int):
    """Validate `body` as `model`; returns (request, max_tokens). Each error names its parameter."""
    try:
        req = model.model_validate(_drop_neutral(body))
    except ValidationError as e:
        err = e.errors()[0]
        param = ".".join(str(p) for p in err["loc"][:1]) or None
        if err["type"] == "extra_forbidden":
            raise BadRequest(f"unsupported parameter `{param}`: superalign serve does not implement it "
                             "(it would be silently ignored); leave it out", param=param,
                             code="unsupported_parameter") from None
        where = ".".join(str(p) for p in err["loc"] if str(p) not in _UNION_TAGS)
        raise BadRequest(f"invalid `{where}`: {err['msg']}", param=param) from None
    mt = getattr(req, "max_completion_tokens", None)
    mt = req.max_tokens if mt is None else mt
    allow_zero = isinstance(req, CompletionRequest)
    if mt is not None and not ((0 if allow_zero else 1) <= mt <= context):
        raise BadRequest(f"`max_tokens` must be in [{0 if allow_zero else 1}, {context}] "
                         f"(the model's context is {context} tokens, prompt included)", param="max_tokens",
                         code="context_length_exceeded" if mt > context else "invalid_value")
    if isinstance(req, ChatRequest):
        if req.top_logprobs is not None and not req.logprobs:
            raise BadRequest("`top_logprobs` needs `logprobs: true`", param="top_logprobs")
        wants_lp = req.logprobs
    else:
        wants_lp = req.logprobs is not None
    if req.stream and wants_lp:
        raise BadRequest("`logprobs` with `stream: true` is not supported; ask for one or the other", param="logprobs",
                         code="unsupported_parameter")
    return req, (default_max if mt is None else mt), mt is None


def finite(x: float | None) -> float | None:
    """A log-prob JSON can carry: -inf (a token the model gives no mass) becomes -9999.0, as OpenAI reports it."""
    return None if x is None else (x if math.isfinite(x) else -9999.0)
