"""Business errors the simulator answers with, as Bitget's ``{code, msg, data: null}`` envelope."""

from __future__ import annotations


class SimError(Exception):
    """A refusal with a Bitget error code; the server turns it into HTTP ``http_status`` + envelope."""

    def __init__(self, code: str, msg: str, http_status: int = 400) -> None:
        super().__init__(f"{code} {msg}")
        self.code = code
        self.msg = msg
        self.http_status = http_status


def param_empty(name: str) -> SimError:
    return SimError("40019", f"Parameter {name} cannot be empty")


def param_error(name: str, detail: str = "") -> SimError:
    return SimError("40020", f"Parameter {name} error" + (f": {detail}" if detail else ""))


def param_missing_entity(name: str) -> SimError:
    return SimError("40034", f"Parameter {name} does not exist")


ORDER_NOT_FOUND = ("40768", "Order does not exist")
NO_ORDER_TO_CANCEL = ("22001", "No order to cancel")
NO_POSITION_TO_CLOSE = ("22002", "No position to close")
NOT_ENOUGH_POSITION = ("40757", "Not enough position is available")
BALANCE_EXCEEDED = ("40762", "The order amount exceeds the balance")
BALANCE_NOT_ENOUGH = ("40754", "balance not enough")
DUPLICATE_CLIENT_OID = ("40786", "Duplicate clientOid")
HEDGE_NEEDS_TRADE_SIDE = (
    "40774",
    "The order type for unilateral position must also be the unilateral position type",
)
POSITION_MODE_LOCKED = ("40920", "Position or order exists, the position mode cannot be switched")
MARGIN_MODE_LOCKED = ("45117", "Currently holding positions or orders, the margin mode cannot be adjusted")
PLAN_NOT_FOUND = ("43020", "The TP/SL order does not exist")
PLAN_ORDER_NOT_FOUND = ("43025", "Plan order does not exist")
TPSL_NO_POSITION = ("40891", "Insufficient position, can not set take profit or stop loss")


def err(pair: tuple[str, str], http_status: int = 400) -> SimError:
    return SimError(pair[0], pair[1], http_status)
