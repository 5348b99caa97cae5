"""`following check-config`: exit 0 and the effective config for a good file; exit 2 naming the key if not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import main

REPO = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "conf.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["example.yaml", "prod.yaml", "demo.yaml"])
def test_shipped_configs_are_valid(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "--conf", str(REPO / "conf" / name)]) == 0
    assert "dry_run: true" in capsys.readouterr().out


def test_unknown_key_is_named_with_its_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "risk:\n  max_levrage: 5\n")
    assert main(["check-config", "--conf", str(path)]) == 2
    err = capsys.readouterr().err
    assert "risk.max_levrage: unknown key" in err


def test_bad_value_names_the_key_and_what_is_expected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "risk:\n  leverage_policy: SOMETIMES\n  stoploss:\n    sl_order_type: maybe\n")
    assert main(["check-config", "--conf", str(path)]) == 2
    err = capsys.readouterr().err
    assert "risk.leverage_policy: expected 'CAP' or 'REJECT'" in err
    assert "risk.stoploss.sl_order_type: expected 'trigger' or 'local_guard'" in err


def test_hard_stop_loss_off_is_refused_with_the_way_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # false would mean positions without a stop: refused, and the message names the supported alternative
    path = _write(tmp_path, "risk:\n  hard_stop_loss_required: false\n")
    assert main(["check-config", "--conf", str(path)]) == 2
    err = capsys.readouterr().err
    assert "risk.hard_stop_loss_required: must be true" in err
    assert "use_default_stop_loss: true" in err


def test_media_host_patterns_are_hosts_not_urls(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "media:\n  allowed_hosts: ['https://cdn4.telesco.pe/file']\n")
    assert main(["check-config", "--conf", str(path)]) == 2
    assert "media.allowed_hosts: 'https://cdn4.telesco.pe/file' is not a host pattern" in capsys.readouterr().err
    path = _write(tmp_path, "media:\n  allowed_hosts: ['*']\n")  # would allow every host, internal ones too
    assert main(["check-config", "--conf", str(path)]) == 2


def test_invalid_yaml_and_missing_file_are_config_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "--conf", str(_write(tmp_path, "risk: [unclosed\n"))]) == 2
    assert "invalid YAML" in capsys.readouterr().err
    assert main(["check-config", "--conf", str(tmp_path / "absent.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_live_mode_without_credentials_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("BITGET_API_KEY", "BITGET_API_SECRET", "BITGET_PASSPHRASE"):
        monkeypatch.delenv(name, raising=False)
    assert main(["check-config", "--conf", str(_write(tmp_path, "dry_run: false\n"))]) == 2
    assert "bitget.api_key_env: environment variable BITGET_API_KEY is not set" in capsys.readouterr().err


def test_secrets_are_masked_in_the_effective_config(tmp_path: Path) -> None:
    secret = "sEcReT-value-1234567"
    env = {"BITGET_API_KEY": secret, "BITGET_API_SECRET": secret + "x", "BITGET_PASSPHRASE": secret + "y",
           "PATH": "/usr/bin:/bin"}
    path = _write(tmp_path, "dry_run: false\n")
    result = subprocess.run([sys.executable, "-m", "cli.main", "check-config", "--conf", str(path)],
                            capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    assert secret not in result.stdout + result.stderr
    assert "bitget_api_key: set" in result.stdout
