"""The node's hotkey, loaded from a Bittensor wallet directory."""

from __future__ import annotations

from pathlib import Path

from bittensor import Wallet
from bittensor.sp_core import Keypair

from gauntlet.config.schema import WalletConfig


class WalletError(RuntimeError):
    """The configured wallet or hotkey cannot be loaded."""


def load_hotkey(config: WalletConfig) -> Keypair:
    path = Path(config.path).expanduser()
    hotkey_file = path / config.name / "hotkeys" / config.hotkey
    if not hotkey_file.is_file():
        raise WalletError(
            f"no hotkey at {hotkey_file}: create it with "
            f"`btcli wallet create --wallet {config.name} --wallet-hotkey {config.hotkey} "
            f"--wallet-path {path}` (or `btcli wallet new-hotkey` in an existing wallet) "
            "or point --wallet.path/--wallet.name/--wallet.hotkey at an existing one"
        )
    try:
        return Wallet(name=config.name, hotkey=config.hotkey, path=str(path)).hotkey
    except Exception as exc:  # the SDK raises KeyfileError/ValueError variants
        raise WalletError(f"cannot load hotkey {hotkey_file}: {exc}") from exc


def create_wallet(path: Path, name: str, hotkey: str = "default") -> Keypair:
    """Create an unencrypted coldkey + hotkey (localnet and tests only)."""
    wallet = Wallet(name=name, hotkey=hotkey, path=str(path))
    wallet.create_new_coldkey(use_password=False, overwrite=True, suppress=True)
    wallet.create_new_hotkey(use_password=False, overwrite=True, suppress=True)
    return wallet.hotkey


def coldkey_address(path: Path, name: str) -> str:
    return Wallet(name=name, path=str(path)).coldkeypub.ss58_address


def coldkey_address_or_none(config: WalletConfig) -> str | None:
    """The wallet's coldkey address from its public file; None when the file is absent
    (a hotkey-only host, as a node should be)."""
    path = Path(config.path).expanduser()
    if not (path / config.name / "coldkeypub.txt").is_file():
        return None
    return coldkey_address(path, config.name)
