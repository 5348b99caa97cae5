"""The command line: run, check-config, sim, parse, posts, reset-mode, status, report.

``following --conf FILE`` is the same as ``following run --conf FILE``; ``following --version``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from exchange.redact import register_secret, scrub
from runtime.config import (
    Config,
    ConfigError,
    check_live_requirements,
    config_secret_texts,
    config_warnings,
    effective_config_text,
    load_config,
    load_secrets,
)
from trading.journal import JournalOpenError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CONFIG = 2

COMMANDS = ("run", "check-config", "sim", "parse", "posts", "reset-mode", "status", "report")


def _print_config_error(error: ConfigError) -> None:
    print("configuration error:", file=sys.stderr)
    for path, message in error.problems:
        print(f"  {path}: {scrub(message)}", file=sys.stderr)


def _load_or_report(path: str) -> Config | None:
    """The config at ``path``, or None after printing every problem with its key path. The config's own secret
    texts (webhook address, a key pasted into a ``*_env`` field) join the scrubber before anything is printed."""
    try:
        config = load_config(path)
    except ConfigError as error:
        _print_config_error(error)
        return None
    register_secret(*config_secret_texts(config))
    for key, message in config_warnings(config):
        print(f"warning: {key}: {message}", file=sys.stderr)
    return config


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _load_or_report(args.conf)
    if config is None:
        return EXIT_CONFIG
    secrets = load_secrets(config)
    problems = check_live_requirements(config, secrets)
    register_secret(*secrets.values())
    print(scrub(effective_config_text(config, secrets)), end="")
    if problems:
        _print_config_error(ConfigError(problems))
        return EXIT_CONFIG
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from runtime.wiring import run_forever

    config = _load_or_report(args.conf)
    if config is None:
        return EXIT_CONFIG
    secrets = load_secrets(config)
    problems = check_live_requirements(config, secrets)
    if problems:
        _print_config_error(ConfigError(problems))
        return EXIT_CONFIG
    return run_forever(config, secrets)


def cmd_reset_mode(args: argparse.Namespace) -> int:
    from runtime.wiring import reset_mode

    config = _load_or_report(args.conf)
    if config is None:
        return EXIT_CONFIG
    ok, message = reset_mode(config)
    print(message, file=sys.stdout if ok else sys.stderr)
    return EXIT_OK if ok else EXIT_ERROR


def _open_journal(config: Config) -> Any:
    """The bot's journal for reading (None, with a message, when there is none yet)."""
    from trading.journal import Journal

    path = Path(config.storage.db_path)
    if not path.exists():
        print(f"no journal at {path}: the bot has not run with this config yet", file=sys.stderr)
        return None
    try:
        return Journal(str(path))
    except Exception as exc:  # a locked, damaged or newer journal: say so, never a traceback
        print(f"journal {path} cannot be read: {scrub(str(exc))}", file=sys.stderr)
        return None


def _status_exchange(config: Config) -> Any:
    """Direct read-only exchange access for `status` when the bot does not answer (never for paper)."""
    if config.dry_run:
        return None
    from cli.status import exchange_positions
    from exchange.bitget.client import BitgetClient, Credentials

    secrets = load_secrets(config)
    if not (secrets.bitget_api_key and secrets.bitget_api_secret and secrets.bitget_passphrase):
        return None
    register_secret(*secrets.values())
    client = BitgetClient(config.bitget.base_url, Credentials(secrets.bitget_api_key.value,
                                                              secrets.bitget_api_secret.value,
                                                              secrets.bitget_passphrase.value),
                          product_type=config.bitget.product_type, margin_coin=config.bitget.margin_coin,
                          demo=config.bitget.demo_trading, timeout=config.bitget.timeout_seconds)
    return lambda: exchange_positions(client, config.bitget.position_mode)


def cmd_status(args: argparse.Namespace) -> int:
    import os

    from cli import status as sc
    from trading.kill_switch import read_kill_switch

    config = _load_or_report(args.conf)
    if config is None:
        return EXIT_CONFIG
    journal = _open_journal(config)
    if journal is None:
        return EXIT_ERROR
    base = sc._health_base(config)

    def kill_switch() -> str | None:
        reading = read_kill_switch(Path(config.kill_switch.file), os.environ, journal.get_flag("kill_switch"),
                                   env_var=config.kill_switch.env_var)
        return None if reading.mode is None else f"{reading.mode.value} ({reading.source}: {reading.detail})"

    try:
        status = sc.collect_status(config, journal, bot=lambda path: sc.ask_bot(base, path),
                                   exchange=_status_exchange(config), kill_switch=kill_switch)
    finally:
        journal.close()
    print(scrub(sc.dumps(status.to_json()) if args.json else sc.render_status(status)))
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from cli import status as sc

    config = _load_or_report(args.conf)
    if config is None:
        return EXIT_CONFIG
    since = None
    if args.since:
        try:
            since = sc.parse_since(args.since)
        except ValueError:
            print(f"--since {args.since!r}: not a date (YYYY-MM-DD or an ISO 8601 time)", file=sys.stderr)
            return EXIT_CONFIG
    journal = _open_journal(config)
    if journal is None:
        return EXIT_ERROR
    try:
        rows = sc.collect_report(journal, since=since, channel=args.channel)
    finally:
        journal.close()
    text = sc.dumps(sc.report_json(rows, trades=args.trades)) if args.json else sc.render_report(rows,
                                                                                                 trades=args.trades)
    print(scrub(text))
    return EXIT_OK


def cmd_sim(args: argparse.Namespace, rest: list[str]) -> int:
    from exchange.sim.__main__ import main as sim_main

    return sim_main(rest)


def cmd_parse(args: argparse.Namespace) -> int:
    from cli import parse as command

    listed: frozenset[str] | None = None
    config: Config | None = None
    if args.conf:
        config = _load_or_report(args.conf)
        if config is None:
            return EXIT_CONFIG
        contracts = command.load_contract_symbols(config)
        if contracts.note:
            print(f"note: {contracts.note}", file=sys.stderr)
        listed = contracts.symbols
    if args.pages < 1:
        print("following parse: --pages must be at least 1", file=sys.stderr)
        return EXIT_ERROR
    try:
        messages: list[command.Message] = []
        if args.jsonl:
            messages = command.messages_from_jsonl(args.jsonl)
        elif not (args.url or args.html):
            stdin = getattr(sys.stdin, "buffer", None)
            messages = command.messages_from_stdin(stdin.read() if stdin is not None else sys.stdin.read())
        try:
            vision = _parse_vision(config)
        except ConfigError as error:
            _print_config_error(error)
            return EXIT_CONFIG
        read = command.make_reader(vision, listed)
        if args.url or args.html:
            command.run_channel(args.url, args.html, args.pages, read, sys.stdout, sys.stderr)
            return EXIT_OK
        command.write_json_lines(command.read_messages(messages, read), sys.stdout)
    except command.InputError as error:
        print(f"following parse: {error}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def _parse_vision(config: Config | None) -> tuple[Any, float] | None:
    """The vision model for `parse` when --conf enables it (ConfigError when it cannot be built)."""
    if config is None:
        return None
    from runtime.vision import build_vlm_client

    if not config.vlm.enabled:
        return None
    return build_vlm_client(config, load_secrets(config)), config.vlm.confidence_threshold


def cmd_posts(args: argparse.Namespace) -> int:
    from cli.posts import run

    return run(args.url, args.html)


DESCRIPTION = """\
Follow a Telegram signal channel and trade its signals on Bitget USDT-M futures, carefully.
'following --conf FILE' is the same as 'following run --conf FILE'. Run 'following COMMAND --help'
for the options of one command."""

CONF_HELP = "the YAML config file (see conf/example.yaml; relative paths in it are relative to its folder)"


def package_version() -> str:
    """The installed version, else the checkout's pyproject.toml version (bin/following without pip install)."""
    from importlib import metadata

    try:
        return metadata.version("following")
    except metadata.PackageNotFoundError:
        import re

        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        try:
            found = re.search(r'^version\s*=\s*"([^"]+)"', pyproject.read_text(encoding="utf-8"), re.MULTILINE)
        except OSError:
            found = None
        return found.group(1) if found else "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="following", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"following {package_version()}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    run = sub.add_parser("run", help="run the bot (paper, Bitget demo or live, as the config says)",
                         description="Run the bot until SIGTERM or Ctrl-C. Exit code 2 on a config problem.")
    run.add_argument("--conf", required=True, metavar="FILE", help=f"{CONF_HELP} (required)")
    check = sub.add_parser("check-config", help="validate a config file and print the effective config",
                           description="Validate a config file; print the account kind and the effective config "
                                       "(secrets only as set / not set). Exit code 2 naming the key on a problem.")
    check.add_argument("--conf", required=True, metavar="FILE", help=f"{CONF_HELP} (required)")
    sub.add_parser("sim", help="run the Bitget simulator alone (see 'following sim --help')", add_help=False)
    parse = sub.add_parser("parse", help="read messages (stdin, --jsonl, or a channel's recent posts) and print "
                                         "how they are understood",
                           description="Read one message from stdin (or JSON lines, or a channel's recent posts) "
                                       "and print each reading as a JSON line with its input line, message id and, "
                                       "for noise and notify_only, the reason; a channel ends with a summary line. "
                                       "Empty input exits 1. Offline unless --conf or --url is given.")
    given = parse.add_mutually_exclusive_group()
    given.add_argument("--jsonl", metavar="FILE",
                       help="one JSON object per line with a 'text' field, an optional 'image' path (relative to "
                            "the file) and an optional 'message_id' (default: one message read from stdin)")
    given.add_argument("--url", help="a channel's web preview, https://t.me/s/<channel>: read its recent posts and "
                                     "summarize how they would be read (default: no channel)")
    given.add_argument("--html", metavar="FILE", help="a saved t.me/s page: read its posts and summarize (default: "
                                                      "no page)")
    parse.add_argument("--pages", type=int, default=1, metavar="N",
                       help="with --url: how many pages of posts to read back from the newest (default 1, about "
                            "20 posts)")
    parse.add_argument("--conf", metavar="FILE",
                       help="config: coins its exchange does not list become notify_only; with vlm.enabled, posts "
                            "with images (or incomplete) go to the model (default: none, offline rules only)")
    posts = sub.add_parser("posts", help="print the posts of a t.me/s page as JSON lines",
                           description="Print the posts of a t.me/s page as JSON lines, media-only posts included "
                                       "(with their image URLs); say on stderr which posts are not signals.")
    source = posts.add_mutually_exclusive_group(required=True)
    source.add_argument("--url", help="a web preview address like https://t.me/s/<channel> (?before=N / ?after=N "
                                      "for older or newer pages); one of --url or --html is required")
    source.add_argument("--html", metavar="FILE", help="a saved t.me/s page (required unless --url is given)")
    reset = sub.add_parser("reset-mode", help="operator reset from safe/panic to normal",
                           description="Ask the running bot (or the next start) to return to normal mode; refused "
                                       "while a kill switch is still set.")
    reset.add_argument("--conf", required=True, metavar="FILE", help=f"{CONF_HELP} (required)")
    status = sub.add_parser("status", help="mode, readiness, open positions, working entries, last signals",
                            description="What the bot is doing: mode and why, readiness checks, open positions "
                                        "(side, size, entry, mark, unrealized P&L, stop, targets left), working "
                                        "entries, the last signals with their decisions. Reads the journal and asks "
                                        "the running bot (or, for a real account, the exchange); works whether "
                                        "the bot runs or not.")
    status.add_argument("--conf", required=True, metavar="FILE", help=f"{CONF_HELP} (required)")
    status.add_argument("--json", action="store_true", help="print JSON instead of text (default: text)")
    report = sub.add_parser("report", help="per channel results: trades, win rate, P&L after fees, R, drawdown",
                            description="Per channel: posts, signals, traded, notify_only by reason, closed trades, "
                                        "wins, losses, win rate, realized P&L after fees, fees, average R, "
                                        "expectancy, maximum drawdown of realized equity; from the exchange's "
                                        "fills stored in the journal.")
    report.add_argument("--conf", required=True, metavar="FILE", help=f"{CONF_HELP} (required)")
    report.add_argument("--since", metavar="DATE", help="only signals from this date on (YYYY-MM-DD, UTC, or ISO "
                                                          "8601 time; default: all)")
    report.add_argument("--channel", metavar="NAME", help="only this channel (default: every channel)")
    report.add_argument("--trades", action="store_true", help="list each closed trade (default: totals only)")
    report.add_argument("--json", action="store_true", help="print JSON instead of text (default: text)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if (argv and argv[0] == "--conf") or (argv and argv[0].startswith("--conf=")):
        argv = ["run", *argv]
    if argv and argv[0] == "sim":
        return cmd_sim(argparse.Namespace(), argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_CONFIG
    handlers = {
        "run": cmd_run,
        "check-config": cmd_check_config,
        "parse": cmd_parse,
        "posts": cmd_posts,
        "reset-mode": cmd_reset_mode,
        "status": cmd_status,
        "report": cmd_report,
    }
    try:
        return handlers[args.command](args)
    except BrokenPipeError:  # `following report | head`: the reader left; not an error worth a traceback
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except JournalOpenError as exc:  # damaged, read-only, disk full: the message names the file and what to do
        print(f"cannot start: {scrub(str(exc))}", file=sys.stderr)
        return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())
