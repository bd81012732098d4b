"""Data preparation for the load tests: one command makes a seeded campus and its credentials export.

    .venv/bin/python -m onecard_load.prepare                      # loadtest/data/hub.db + hub.keys/
    .venv/bin/python -m onecard_load.prepare --out /tmp/campus --students 40000 --force

It runs `onecard-hub seed` with settings that keep the load approvable: ¥10,000 in every wallet, a daily
limit as high, 1,000 payments per meal window, the default PIN-free limit (¥50, above the users' ¥5–¥20
purchases), 40 canteen POS and 8 gates per school. The default 1% lost cards and 1% suspended students
stay (about 2% of taps are declined on purpose, as in a real rush; the load test reports them as declines).
`--tls` also makes the PKI for mutual TLS in hub.keys/pki (`onecard-hub pki init` and `issue-all`).
The hub has no rate limits yet; when it gets them, this is where generous ones are seeded.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from onecard_client.campus import keys_dir_for
from onecard_load.processes import hub_command

__all__ = ["DEFAULT_OUT", "LOAD_SEED_ARGS", "Campus", "make_pki", "prepare"]

DEFAULT_OUT = Path("loadtest/data")
LOAD_SEED_ARGS = (
    "--gates-per-school", "8",
    "--pos-per-school", "40",
    "--initial-balance-fen", "1000000",
    "--daily-limit-fen", "1000000",
    "--meal-count-limit", "1000",
    "--pin-free-limit-fen", "5000",
)  # fmt: skip


@dataclass(frozen=True)
class Campus:
    db: Path
    keys: Path


class PrepareError(RuntimeError):
    """Seeding failed or would overwrite a campus; the message says which."""


def prepare(
    out: Path,
    *,
    students: int = 20_000,
    schools: int = 2,
    seed: int = 7,
    force: bool = False,
    python: str = sys.executable,
    quiet: bool = True,
) -> Campus:
    """Seeds `out`/hub.db and `out`/hub.keys/ (credentials export included); returns where they are."""
    db = out / "hub.db"
    keys = keys_dir_for(db)
    existing = [p for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm"), keys) if p.exists()]
    if existing and not force:
        raise PrepareError(f"{out} already holds a campus ({db}); pass --force to replace it")
    for path in existing:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    out.mkdir(parents=True, exist_ok=True)
    argv = [
        *hub_command(python),
        "seed",
        "--db", str(db),
        "--students", str(students),
        "--schools", str(schools),
        "--seed", str(seed),
        *LOAD_SEED_ARGS,
    ]  # fmt: skip
    if quiet:
        argv.append("--quiet")
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=quiet, text=True, check=False)
    if done.returncode != 0:
        raise PrepareError(f"onecard-hub seed failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    if not (keys / "credentials.json").is_file():
        raise PrepareError(f"onecard-hub seed wrote no {keys}/credentials.json")
    return Campus(db, keys)


def make_pki(keys: Path, folder: Path, python: str = sys.executable) -> Path:
    """The PKI for mutual TLS in `folder` (`onecard-hub pki`): a CA and server certificate (for localhost
    and 127.0.0.1) unless `folder` has them already, and a certificate for every terminal and operator of
    the campus whose credentials export is `keys`. Returns `folder`: `serve --tls` and Locust's `--tls`."""
    steps = [] if (folder / "ca.crt").is_file() else [["init"]]
    steps.append(["issue-all"])
    for step in steps:
        argv = [*hub_command(python), "pki", *step, "--dir", str(folder), "--keys", str(keys)]
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise PrepareError(
                f"onecard-hub pki {step[0]} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
            )
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for hub.db and hub.keys/")
    parser.add_argument("--students", type=int, default=20_000, help="students (one card each)")
    parser.add_argument("--schools", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7, help="random seed: same seed, same campus")
    parser.add_argument("--force", action="store_true", help="replace a campus already in --out")
    parser.add_argument(
        "--tls",
        action="store_true",
        help="also make the PKI for mutual TLS in hub.keys/pki (onecard-hub pki)",
    )
    args = parser.parse_args(argv)
    pki = None
    try:
        campus = prepare(
            args.out, students=args.students, schools=args.schools, seed=args.seed, force=args.force
        )
        if args.tls:
            pki = make_pki(campus.keys, campus.keys / "pki")
    except PrepareError as exc:
        print(f"prepare: {exc}", file=sys.stderr)
        return 1
    print(f"campus:      {campus.db}")
    print(f"credentials: {campus.keys}  (pass to Locust with --keys)")
    tls = "" if pki is None else f" --tls {pki}"
    if pki is not None:
        print(f"PKI:         {pki}  (the hub's serve --tls and Locust's --tls)")
    print("serve it on a simulated clock inside the lunch window:")
    print(
        f"  .venv/bin/onecard-hub serve --db {campus.db} --listen 127.0.0.1:50051{tls} "
        "--clock-start 2026-11-24T12:00:00+08:00 --clock-speed 1"
    )
    print("then, for example:")
    print(f"  .venv/bin/locust -f loadtest/meal_rush.py --host 127.0.0.1:50051 --keys {campus.keys}{tls}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
