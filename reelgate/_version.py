"""The installed distribution's version, or a marker when running from a source tree."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("reelgate")
except PackageNotFoundError:  # pragma: no cover - only in an uninstalled checkout
    __version__ = "0.0.0+unknown"
