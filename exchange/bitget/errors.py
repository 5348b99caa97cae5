"""Typed Bitget errors and the table that maps exchange codes onto them.

Callers branch on the class, never on message text. The most important split is between
*definitive* failures (the exchange said no; nothing happened) and :class:`UnknownOutcome` (a write was
sent but we could not read the answer, so the order may or may not exist and must be looked up by its
client id before anything is re-sent).

Messages carry the endpoint path, the exchange code and the exchange's own message; never credentials.
"""

from __future__ import annotations

_MAX_MESSAGE_CHARS = 300  # exchange messages are short; anything longer is probably an HTML error page


class BitgetError(Exception):
    """Base of every error the Bitget client raises."""

    def __init__(self, code: str, message: str, endpoint: str, *, http_status: int | None = None) -> None:
        self.code = str(code)
        self.message = str(message)[:_MAX_MESSAGE_CHARS]
        self.endpoint = endpoint
        self.http_status = http_status
        super().__init__(f"{endpoint}: bitget {self.code}: {self.message}")

    def __reduce__(self) -> tuple[object, ...]:
        # Keep errors picklable (they cross actor boundaries in futures) despite the keyword-only arg.
        return (_rebuild, (type(self), self.code, self.message, self.endpoint, self.http_status))


def _rebuild(cls: type[BitgetError], code: str, message: str, endpoint: str, http_status: int | None) -> BitgetError:
    return cls(code, message, endpoint, http_status=http_status)


class AuthError(BitgetError):
    """Key, signature, passphrase, permissions or environment (demo vs live) rejected."""


class TimestampExpired(AuthError):
    """40005 / 40008: our clock (plus the stored server offset) is off; re-sync the server time."""


class InvalidParameter(BitgetError):
    """The request was refused as malformed: bad size/price scale, below minimums, bad enum value."""


class UnknownSymbol(InvalidParameter):
    """The symbol is not among the exchange's contracts (or not tradable)."""


class InvalidTriggerPrice(InvalidParameter):
    """A TP/SL trigger is on the wrong side of the mark / last / average open price."""


class InsufficientFunds(BitgetError):
    """Not enough available balance for the order."""


class InsufficientPosition(BitgetError):
    """Closing / protecting more than the open position (or no position at all)."""


class OrderNotFound(BitgetError):
    """The order (or TP/SL / plan order) does not exist, or is no longer open."""


class DuplicateClientOid(BitgetError):
    """The client order id was already used: the earlier order with that id exists."""


class PositionModeError(BitgetError):
    """One-way vs hedge mismatch, or a mode change refused because positions/orders exist."""


class RateLimited(BitgetError):
    """HTTP 429 or a rate-limit code. ``retry_after`` is the suggested wait in seconds, if known."""

    def __init__(
        self,
        code: str,
        message: str,
        endpoint: str,
        *,
        http_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(code, message, endpoint, http_status=http_status)
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_rate_limited, (self.code, self.message, self.endpoint, self.http_status, self.retry_after))


def _rebuild_rate_limited(
    code: str, message: str, endpoint: str, http_status: int | None, retry_after: float | None
) -> RateLimited:
    return RateLimited(code, message, endpoint, http_status=http_status, retry_after=retry_after)


class ExchangeUnavailable(BitgetError):
    """5xx, connection failure or timeout on a request that changed nothing (a read, or a refused connect)."""


class UnknownOutcome(BitgetError):
    """A write was sent but its result is unknown (timeout, 5xx, unreadable reply).

    The order may exist. Resolve it by client id (``BitgetClient.resolve_unknown``) before re-sending.
    """


class MalformedResponse(BitgetError):
    """The exchange answered with something we cannot parse (not JSON, missing or bad fields)."""


# Code -> class. Codes come from the reference notes (Bitget error table, ccxt, SDKs).
_CODE_TABLE: dict[str, type[BitgetError]] = {}


def _register(cls: type[BitgetError], *codes: str) -> None:
    for code in codes:
        _CODE_TABLE[code] = cls


_register(AuthError, "40001", "40002", "40003", "40006", "40009", "40011", "40012", "40014", "40037", "40099")
_register(TimestampExpired, "40005", "40008")
_register(
    InvalidParameter,
    "40017",
    "40019",
    "40020",
    "40034",
    "40304",
    "40305",
    "40808",
    "41103",
    "45115",
    "45035",
    "45110",
    "43006",
    "45111",
    "43030",
    "43031",
    "22003",
)
_register(InvalidTriggerPrice, "40915", "40917", "45122", *(str(c) for c in range(40829, 40837)))
_register(InsufficientFunds, "40754", "43012", "40762")
_register(InsufficientPosition, "40757", "40755", "22002", "40891", "43023")
_register(OrderNotFound, "43001", "40768", "40109", "22001", "43020", "43025")
_register(DuplicateClientOid, "40786", "40708", "43118", "45034", "50060")
_register(PositionModeError, "40774", "45021", "40920", "45117", "22042", "45100", "45101")
_register(RateLimited, "429", "30007")

DUPLICATE_CLIENT_OID_CODES: frozenset[str] = frozenset(
    code for code, cls in _CODE_TABLE.items() if cls is DuplicateClientOid
)
ORDER_NOT_FOUND_CODES: frozenset[str] = frozenset(code for code, cls in _CODE_TABLE.items() if cls is OrderNotFound)


def error_class_for(code: str) -> type[BitgetError]:
    """The class for an exchange code; unknown codes give the plain :class:`BitgetError`."""
    return _CODE_TABLE.get(str(code), BitgetError)


def error_from_code(code: str, message: str, endpoint: str, *, http_status: int | None = None) -> BitgetError:
    cls = error_class_for(code)
    return cls(str(code), message, endpoint, http_status=http_status)
