#!/usr/bin/env python3
"""arca's benchmark harness (issue 5): arca against restic, borg and rustic on a chat-app folder.

Standard library only (Python 3.11). See bench/README.md for what is measured and how.

Subcommands
  peers    every tool with its default settings and a local, encrypted repository: day-0 backup,
           no-change backup, day-1 backup, full restore; plus the machine's floor (reading the
           corpus; cutting, hashing and sealing it with arca's primitives)
  chunks   arca alone with several chunk and pack sizes (ARCA_CHUNKER, ARCA_PACK_SIZE)
  scaling  arca alone at several corpus scales, or numbers of small files (--files): time and
           peak memory as the data grows
  report   rebuild report.md from a results.json

    python3 bench/run.py peers   --scale 0.25 --out bench/out/peers-0.25
    python3 bench/run.py chunks  --scale 0.25 --out bench/out/chunks-0.25
    python3 bench/run.py scaling --scales 0.25,1,4 --out bench/out/scaling
    python3 bench/run.py scaling --files 100000,300000,1000000 --out bench/out/files

Every run writes OUT/results.json (every measurement of every round) and OUT/report.md (the
tables). Corpora, repositories and restores live under --work (default /tmp/arca-bench), which is
deleted at the end unless --keep is given.
"""

import argparse
import filecmp
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS_PY = ROOT / "bench" / "corpus.py"
PASSWORD = "arca-bench-password"
MIB = 1 << 20
PHASES = ["day0", "nochange", "day1", "restore"]
PHASE_TITLES = {
    "day0": "day-0 backup",
    "nochange": "no-change backup",
    "day1": "day-1 backup",
    "restore": "restore (latest)",
}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def slug(name):
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def tree_bytes(path):
    """Apparent size of every regular file under path."""
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue
            if not os.path.islink(os.path.join(dirpath, name)):
                total += st.st_size
    return total


GNU_TIME = "/usr/bin/time"
WAIT4_RSS = "wait4 (includes the harness's own size)"


def measure(cmd, env=None, cwd=None, log_to=None):
    """Runs cmd; returns wall and CPU seconds (from wait4) and peak RSS of the tool's process.

    The peak RSS comes from GNU time, which runs the tool as its own child: `wait4`'s ru_maxrss
    for a child of this script is at least this script's own peak RSS, because Linux counts the
    memory a child had between fork and exec (the harness's, some 20-30 MiB at scale 4 with the
    corpus's file lists). That made lean phases look like the harness's size (session 6). Without
    GNU time (Debian's `time`), wait4's figure is kept and the result says so."""
    out = open(f"{log_to}.out", "wb") if log_to else subprocess.DEVNULL
    err = open(f"{log_to}.err", "wb") if log_to else subprocess.DEVNULL
    load = loadavg()
    rss_file, shown = None, [str(c) for c in cmd]
    if os.access(GNU_TIME, os.X_OK):
        fd, rss_file = tempfile.mkstemp(prefix="arca-bench-rss-")
        os.close(fd)
        cmd = [GNU_TIME, "-f", "%M", "-o", rss_file, *cmd]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=cwd)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if log_to:
        out.close()
        err.close()
    rss_kib, rss_from = ru.ru_maxrss, WAIT4_RSS
    if rss_file:
        # GNU time writes "Command exited with non-zero status N" before the figure on failure.
        lines = Path(rss_file).read_text().split()
        os.unlink(rss_file)
        if lines and lines[-1].isdigit():
            rss_kib, rss_from = int(lines[-1]), "GNU time"
    return {
        "cmd": shown,
        "rc": proc.returncode,
        "wall": wall,
        "user": ru.ru_utime,
        "sys": ru.ru_stime,
        "cpu": ru.ru_utime + ru.ru_stime,
        "rss_mib": rss_kib / 1024,
        "rss_from": rss_from,
        "load1": load,
    }


def run(cmd, env=None, cwd=None, check=True):
    p = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({p.returncode}): {p.stderr[-2000:]}")
    return p


def sync():
    os.sync()


def until_on_disk(m):
    """Times the `sync` right after a tool exits: one that writes through the page cache exits
    before its bytes are on the disk. Sets `to_disk`, the wall time plus that `sync`."""
    t0 = time.monotonic()
    sync()
    m["to_disk"] = m["wall"] + (time.monotonic() - t0)


def read_corpus(corpus, log_to=None):
    """Reads every file of the corpus once (cat > /dev/null): warms the page cache, and when
    the cache is already warm, measures the machine's read floor."""
    return measure(["sh", "-c", 'find "$1" -type f -exec cat {} + > /dev/null', "sh", str(corpus)],
                   log_to=log_to)


def corpus_py(*args):
    """Runs bench/corpus.py and returns what it printed (JSON)."""
    return json.loads(run([sys.executable, CORPUS_PY, *map(str, args)]).stdout)


def generate(kind, corpus, seed, *size):
    """A new corpus of `kind` (`generate` or `files`) in place of the old one."""
    info = corpus_py(kind, "--out", corpus, *size, "--seed", seed, "--force")
    _deleted_at[0] = time.monotonic()  # --force deleted the previous corpus
    return info


def corpus_generate(corpus, scale, seed):
    return generate("generate", corpus, seed, "--scale", scale)


def files_generate(corpus, count, seed):
    return generate("files", corpus, seed, "--count", count)


def files_day(corpus, day):
    return corpus_py("files-day", "--dir", corpus, "--day", day)


def corpus_day(corpus, day):
    return corpus_py("day", "--dir", corpus, "--day", day)


SIDECARS = ("-wal", "-shm", "-journal")


def files_of(root):
    """{relative path: (size, mtime_ns)} of the regular files under root."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_size, st.st_mtime_ns)
    return out


def is_sqlite(path):
    with open(path, "rb") as f:
        return f.read(16) == b"SQLite format 3\0"


def sqlite_dump(path):
    conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def same_tree(src, dst):
    """Compares a restore with the corpus: the same files with the same bytes. A SQLite database
    whose bytes differ counts as equal when its logical content (`.dump`) is equal: a tool that
    captures a WAL database through SQLite's backup API writes a new header (change counter,
    SQLite version). Returns (ok, notes)."""
    a, b = files_of(src), files_of(dst)
    notes, ok = [], True
    for rel in sorted(set(a) | set(b)):
        if rel not in b:
            ok = False
            notes.append(f"missing: {rel}")
        elif rel not in a:
            ok = False
            notes.append(f"extra: {rel}")
        elif not filecmp.cmp(os.path.join(src, rel), os.path.join(dst, rel), shallow=False):
            pa, pb = os.path.join(src, rel), os.path.join(dst, rel)
            if is_sqlite(pa) and is_sqlite(pb) and sqlite_dump(pa) == sqlite_dump(pb):
                notes.append(f"{rel}: bytes differ, SQLite content equal")
            else:
                ok = False
                notes.append(f"differs: {rel}")
    return ok, notes


def undo_side_effects(corpus, before):
    """A tool must not change what it backs up. Records what changed in the corpus during a
    phase, and removes new SQLite sidecar files (an empty -wal, a -shm) so that every tool backs
    up the same state."""
    after = files_of(corpus)
    changes = []
    for rel in sorted(set(after) - set(before)):
        path = Path(corpus) / rel
        removable = rel.endswith("-shm") or (rel.endswith("-wal") and after[rel][0] == 0)
        if removable and any(rel.endswith(s) for s in SIDECARS):
            path.unlink()
            changes.append(f"created {rel} ({after[rel][0]} bytes; removed by the harness)")
        else:
            changes.append(f"created {rel} ({after[rel][0]} bytes)")
    for rel in sorted(set(before) - set(after)):
        changes.append(f"deleted {rel}")
    for rel in sorted(set(before) & set(after)):
        if before[rel] != after[rel]:
            changes.append(f"changed {rel}")
    return changes


def restored_root(target, corpus):
    """Where a tool put the corpus under its restore target."""
    nested = Path(target) / str(corpus).lstrip("/")
    if nested.is_dir():
        return nested
    if (Path(target) / ".corpus.json").exists():
        return Path(target)
    for dirpath, _, files in os.walk(target):
        if ".corpus.json" in files:
            return Path(dirpath)
    return nested


# ---------------------------------------------------------------------------------------------
# The tools. Each gets its own folder holding its repository and a private HOME (caches, config),
# so nothing is shared between tools or rounds.


class Tool:
    name = "?"

    def __init__(self, exe, base):
        self.exe = str(exe)
        self.base = Path(base)
        self.repo = self.base / "repo"
        self.home = self.base / "home"

    def env(self):
        e = dict(os.environ)
        e["HOME"] = str(self.home)
        for k in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
            e.pop(k, None)
        return e

    def fresh(self):
        forget(self.base)
        self.home.mkdir(parents=True)

    def version(self):
        return "?"

    def init_cmds(self):
        raise NotImplementedError

    def backup_cmd(self, corpus, label):
        raise NotImplementedError

    def restore_cmd(self, target):
        """(argv, cwd)"""
        raise NotImplementedError

    def state_bytes(self):
        """Bytes the tool keeps on this device besides the repository (caches, config)."""
        return tree_bytes(self.home)


class Arca(Tool):
    name = "arca"

    def __init__(self, exe, base, chunker=None, pack_size=None):
        super().__init__(exe, base)
        self.chunker = chunker
        self.pack_size = pack_size
        self.version_str = "arca"

    def env(self):
        e = super().env()
        e["ARCA_CONFIG_DIR"] = str(self.home / "arca")
        e["ARCA_REPO"] = str(self.repo)
        for k in ("ARCA_CHUNKER", "ARCA_PACK_SIZE", "ARCA_KEY", "ARCA_KEY_FILE", "ARCA_LOG"):
            e.pop(k, None)
        if self.chunker:
            e["ARCA_CHUNKER"] = self.chunker
        if self.pack_size:
            e["ARCA_PACK_SIZE"] = str(self.pack_size)
        return e

    def version(self):
        return self.version_str

    def init_cmds(self):
        return [[self.exe, "enable", "--key"]]

    def backup_cmd(self, corpus, label):
        return [self.exe, "--json", "backup", corpus]

    def restore_cmd(self, target):
        return [self.exe, "--json", "restore", "--target", target], None


class Restic(Tool):
    name = "restic"

    def env(self):
        e = super().env()
        e["RESTIC_REPOSITORY"] = str(self.repo)
        e["RESTIC_PASSWORD"] = PASSWORD
        return e

    def version(self):
        return run([self.exe, "version"]).stdout.strip()

    def init_cmds(self):
        return [[self.exe, "init"]]

    def backup_cmd(self, corpus, label):
        return [self.exe, "backup", "--json", corpus]

    def restore_cmd(self, target):
        return [self.exe, "restore", "latest", "--target", target], None


class Borg(Tool):
    name = "borg"

    def env(self):
        e = super().env()
        e["BORG_REPO"] = str(self.repo)
        e["BORG_PASSPHRASE"] = PASSWORD
        e["BORG_BASE_DIR"] = str(self.home)
        return e

    def version(self):
        return run([self.exe, "--version"]).stdout.strip()

    def init_cmds(self):
        return [[self.exe, "init", "--encryption=repokey-blake2"]]

    def backup_cmd(self, corpus, label):
        return [self.exe, "create", "--json", f"::{label}", corpus]

    def restore_cmd(self, target):
        # The newest archive is the day-1 one; borg extracts into the working directory.
        return [self.exe, "extract", "::day1"], target


class Rustic(Tool):
    name = "rustic"

    def env(self):
        e = super().env()
        e["RUSTIC_REPOSITORY"] = str(self.repo)
        e["RUSTIC_PASSWORD"] = PASSWORD
        return e

    def version(self):
        return run([self.exe, "--version"]).stdout.strip()

    def init_cmds(self):
        return [[self.exe, "init"]]

    def backup_cmd(self, corpus, label):
        return [self.exe, "backup", "--json", corpus]

    def restore_cmd(self, target):
        return [self.exe, "restore", "latest", target], None


PEERS = {"restic": Restic, "borg": Borg, "rustic": Rustic}
PEER_EXE = {"restic": "restic", "borg": "borg", "rustic": "rustic"}


def install_peers(names, no_install):
    """Finds each peer, installing the missing ones (Debian packages, the Rust registry).
    Returns ({name: path}, {name: why missing})."""
    found, missing = {}, {}
    for name in names:
        exe = shutil.which(PEER_EXE[name]) or (
            str(Path.home() / ".cargo/bin/rustic")
            if name == "rustic" and (Path.home() / ".cargo/bin/rustic").exists() else None)
        if not exe and not no_install:
            if name in ("restic", "borg"):
                pkg = {"restic": "restic", "borg": "borgbackup"}[name]
                log(f"installing {pkg} (apt-get)")
                cmd = ["apt-get", "install", "-y", pkg]
                if os.geteuid() != 0:
                    cmd = ["sudo", "-n"] + cmd
                p = run(cmd, check=False)
                why = p.stderr[-500:]
            else:
                log("installing rustic-rs (cargo install --locked; this takes a long while)")
                env = dict(os.environ, CARGO_TARGET_DIR="/tmp/arca-bench-rustic-target")
                p = run(["nice", "-n", "19", "cargo", "install", "rustic-rs", "--locked"],
                        env=env, check=False)
                why = p.stderr[-500:]
            exe = shutil.which(PEER_EXE[name]) or (
                str(Path.home() / ".cargo/bin/rustic") if name == "rustic"
                and (Path.home() / ".cargo/bin/rustic").exists() else None)
            if not exe:
                missing[name] = why.strip() or "install failed"
        elif not exe:
            missing[name] = "not installed (--no-install)"
        if exe:
            found[name] = exe
    return found, missing


def arca_exe(args):
    """The arca binary to measure, copied into --work (nobody can rebuild it during the run).
    Default: build the committed revision --arca-rev (HEAD) from `git archive` in a scratch
    folder, so the figures belong to a commit and half-edited work trees do not matter."""
    copy = Path(args.work) / "bin" / "arca"
    copy.parent.mkdir(parents=True, exist_ok=True)
    if args.arca:
        exe, version = Path(args.arca), "arca (given binary)"
    elif args.arca_rev == "worktree":
        log("cargo build --release -p arca-cli (work tree)")
        run(["cargo", "build", "--release", "-p", "arca-cli"], cwd=ROOT)
        exe, version = ROOT / "target" / "release" / "arca", "arca work tree"
    else:
        rev = run(["git", "-C", ROOT, "rev-parse", "--short", args.arca_rev]).stdout.strip()
        args.arca_rev = rev  # HEAD may move during the run; the floor is built from this too
        build = Path(args.build_dir)
        src = build / f"src-{rev}"
        if not (src / "Cargo.toml").exists():
            shutil.rmtree(src, ignore_errors=True)
            src.mkdir(parents=True)
            archive = subprocess.run(["git", "-C", ROOT, "archive", rev],
                                     capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", src], input=archive, check=True)
        log(f"cargo build --release -p arca-cli (commit {rev}, in {src})")
        env = dict(os.environ, CARGO_TARGET_DIR=str(build / "target"))
        run(["cargo", "build", "--release", "-p", "arca-cli"], cwd=src, env=env)
        exe, version = build / "target" / "release" / "arca", f"arca {rev}"
    if not exe.exists():
        sys.exit(f"arca binary not found at {exe}")
    shutil.copy2(exe, copy)
    return copy, version


def write_floor(work, nbytes, direct=False):
    """Writing as many bytes as the corpus holds to one file: through the page cache with
    fsync at the end, or (`direct`) past it with O_DIRECT in 1 MiB writes, as arca writes packs."""
    bs = MIB if direct else 16 * MIB
    count = max(1, -(-nbytes // bs))
    target = work / "write-floor"
    sync()
    flag = "oflag=direct" if direct else "conv=fsync"
    m = measure(["dd", "if=/dev/zero", f"of={target}", f"bs={bs}", f"count={count}", flag])
    target.unlink()
    m["bytes"] = count * bs
    return m


def floor(corpus, args):
    """The floor example (crates/arca-format/examples/floor.rs): read / cut / hash+seal
    throughput with arca's primitives, built from the same sources as the measured arca."""
    src, env = ROOT, None
    if not args.arca and args.arca_rev != "worktree":
        rev = run(["git", "-C", ROOT, "rev-parse", "--short", args.arca_rev]).stdout.strip()
        src = Path(args.build_dir) / f"src-{rev}"
        example = src / "crates/arca-format/examples/floor.rs"
        if not example.exists():  # a commit from before the example was added
            example.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / "crates/arca-format/examples/floor.rs", example)
        env = dict(os.environ, CARGO_TARGET_DIR=str(Path(args.build_dir) / "target"))
    target = Path((env or os.environ).get("CARGO_TARGET_DIR", src / "target"))
    if not args.no_build:
        run(["cargo", "build", "--release", "--example", "floor", "-p", "arca-format"],
            cwd=src, env=env)
    p = run([target / "release" / "examples" / "floor", corpus])
    return {"text": p.stdout.strip().splitlines()[:-1],
            "runs": json.loads(p.stdout.strip().splitlines()[-1])}


def machine():
    info = {"nproc": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version()}
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                info["mem_gib"] = round(int(line.split()[1]) / (1 << 20), 1)
    return info


# ---------------------------------------------------------------------------------------------
# One tool through the phases.


def phase(tool, corpus, name, label, work, results, rnd):
    """Measures one backup phase of `tool`; appends the measurement to results."""
    sync()
    read_corpus(corpus)  # same warm page cache for every tool
    before = tree_bytes(tool.repo)
    source = files_of(corpus)
    m = measure(tool.backup_cmd(corpus, label), env=tool.env(),
                log_to=work / "logs" / f"r{rnd}-{slug(tool.key)}-{name}")
    until_on_disk(m)
    changes = undo_side_effects(corpus, source)
    if changes:
        m["source_changes"] = changes
        log(f"  {tool.key} changed the corpus while backing it up: {'; '.join(changes)}")
    if m["rc"] not in (0, 3) and not (tool.name == "borg" and m["rc"] == 1):
        raise RuntimeError(f"{tool.key} {name} failed (rc {m['rc']}), see {work / 'logs'}")
    sync()
    m["repo_bytes"] = tree_bytes(tool.repo)
    m["added_bytes"] = m["repo_bytes"] - before
    m["state_bytes"] = tool.state_bytes()
    if tool.name == "arca":
        try:
            out = (work / "logs" / f"r{rnd}-{slug(tool.key)}-{name}.out").read_text()
            j = json.loads(out.strip().splitlines()[-1])
            m["arca"] = {k: j.get(k) for k in ("new_bytes", "uploaded_bytes", "seconds")}
        except (ValueError, IndexError):
            pass
    m.update(tool=tool.key, phase=name, round=rnd)
    results["runs"].append(m)
    log(f"  {tool.key:<14} {name:<9} {m['wall']:7.2f} s wall {m['cpu']:7.2f} s cpu "
        f"{m['rss_mib']:7.1f} MiB rss  +{m['added_bytes'] / MIB:8.1f} MiB  (load {m['load1']})")
    return m


# ext4's inode allocator passes over inodes freed in the last 60 s (300 s while their inode
# table block is dirty), reading the inode table block of each: a restore right after another
# tool's restore was deleted spent about half its CPU time there (perf, session 6), the same
# few seconds for every tool. A user restores onto a new device, not into a folder just
# emptied, so restores wait until the last bulk delete is that old, after a `sync`.
RECENTLY_DELETED_S = 65
_deleted_at = [float("-inf")]


def forget(path):
    """Deletes a tree the harness made (a repository, a restore, a corpus), noting when."""
    if Path(path).exists():
        shutil.rmtree(path, ignore_errors=True)
        _deleted_at[0] = time.monotonic()


def settle():
    """Waits until the last bulk delete is older than ext4's recently-deleted window."""
    sync()
    wait = _deleted_at[0] + RECENTLY_DELETED_S - time.monotonic()
    if wait > 0:
        log(f"  (waiting {wait:.0f} s: inodes deleted less than {RECENTLY_DELETED_S} s ago "
            "slow ext4's inode allocation)")
        time.sleep(wait)


def evict(root):
    """Takes the files under `root` out of the page cache (POSIX_FADV_DONTNEED after `sync`,
    so every page is clean and goes): a restore reads a repository that is not in memory, as a
    user's restore does days later or on another device. Returns the bytes of the files."""
    sync()
    total = 0
    for rel in files_of(root):
        try:
            fd = os.open(os.path.join(root, rel), os.O_RDONLY)
        except OSError:
            continue
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            total += os.fstat(fd).st_size
        finally:
            os.close(fd)
    return total


def restore_phase(tool, corpus, work, results, rnd, verify=True, keep=False):
    """Measures a full restore into a new folder. With `keep`, the restored tree is left for
    the caller to delete (with `forget`) once no other restore of the round is to come."""
    target = work / f"restore-{slug(tool.key)}"
    forget(target)
    target.mkdir(parents=True)
    settle()
    evict(tool.repo)
    cmd, cwd = tool.restore_cmd(target)
    m = measure(cmd, env=tool.env(), cwd=cwd or None,
                log_to=work / "logs" / f"r{rnd}-{slug(tool.key)}-restore")
    until_on_disk(m)
    if m["rc"] != 0:
        raise RuntimeError(f"{tool.key} restore failed (rc {m['rc']}), see {work / 'logs'}")
    if verify:
        ok, notes = same_tree(corpus, restored_root(target, corpus))
        m["verified"] = ok
        if notes:
            m["verify_notes"] = notes
    m["restored_bytes"] = tree_bytes(target)
    m.update(tool=tool.key, phase="restore", round=rnd)
    results["runs"].append(m)
    log(f"  {tool.key:<14} restore   {m['wall']:7.2f} s wall {m['cpu']:7.2f} s cpu "
        f"{m['rss_mib']:7.1f} MiB rss  verified={m.get('verified')}")
    if not keep:
        forget(target)
    return m


def setup(tool, work, rnd):
    tool.fresh()
    for cmd in tool.init_cmds():
        p = run(cmd, env=tool.env(), check=False)
        (work / "logs" / f"r{rnd}-{slug(tool.key)}-init.out").write_text(p.stdout + p.stderr)
        if p.returncode != 0:
            raise RuntimeError(f"{tool.key} init failed: {p.stderr[-1000:]}")
    return tree_bytes(tool.repo)


def rounds(tools, args, work, results, with_nochange=True, floors=False):
    """Each round: a fresh corpus; every tool's day-0 (and no-change) backup; day 1 applied;
    every tool's day-1 backup and restore; with `floors`, the machine's floor on the corpus.
    Later rounds run the tools in reverse order."""
    corpus = work / "corpus"
    for rnd in range(1, args.rounds + 1):
        order = tools if rnd % 2 == 1 else list(reversed(tools))
        log(f"round {rnd}: generating corpus (scale {args.scale})")
        results["corpus"] = corpus_generate(corpus, args.scale, args.seed)
        read_corpus(corpus)
        results.setdefault("read_floor", []).append(
            read_corpus(corpus, log_to=work / "logs" / f"r{rnd}-read"))
        for tool in order:
            results["init_bytes"][tool.key] = setup(tool, work, rnd)
            phase(tool, corpus, "day0", "day0", work, results, rnd)
            if with_nochange:
                phase(tool, corpus, "nochange", "nochange", work, results, rnd)
            save(results, args.out)
        results["day1"] = corpus_day(corpus, 1)
        for tool in order:
            phase(tool, corpus, "day1", "day1", work, results, rnd)
            # Kept until every tool has restored: see RECENTLY_DELETED_S.
            restore_phase(tool, corpus, work, results, rnd, keep=True)
            save(results, args.out)
        for tool in order:
            forget(work / f"restore-{slug(tool.key)}")
            forget(tool.base)
        if floors:
            log("floor: read, cut, hash and seal with arca's primitives; write")
            results.setdefault("floor", {"runs": []})["runs"] += floor(corpus, args)["runs"]
            results.setdefault("write_floor", []).append(
                write_floor(work, results["corpus"]["total_bytes"]))
            results.setdefault("write_floor_direct", []).append(
                write_floor(work, results["corpus"]["total_bytes"], direct=True))
            save(results, args.out)
    return corpus


# ---------------------------------------------------------------------------------------------
# Reports


def best(results):
    """{tool: {phase: best measurement}}: lowest wall, CPU and RSS over rounds (each taken
    on its own); sizes from the first round."""
    keys = ("wall", "cpu", "user", "sys", "rss_mib", "to_disk")
    out = {}
    for m in results["runs"]:
        cur = out.setdefault(m["tool"], {}).get(m["phase"])
        if cur is None:
            out[m["tool"]][m["phase"]] = dict(m, rounds=1, **{
                k + "_max": m[k] for k in keys if k in m})
            continue
        for k in keys:
            if k not in m:
                continue
            cur[k] = min(cur.get(k, m[k]), m[k])
            cur[k + "_max"] = max(cur.get(k + "_max", cur[k]), m[k])
        cur["rounds"] += 1
        for k in ("verified",):
            if k in m:
                cur[k] = cur.get(k, True) and m[k]
    return out


def fmt_bytes(n):
    if n is None:
        return "–"
    if abs(n) >= 10 * MIB:
        return f"{n / MIB:,.0f} MiB"
    if abs(n) >= MIB:
        return f"{n / MIB:.1f} MiB"
    return f"{n / 1024:,.0f} KiB"


def fmt_s(s):
    return "–" if s is None else (f"{s:.2f} s" if s < 10 else f"{s:.1f} s")


def ratio(a, b):
    return "–" if a is None or not b else f"{a / b:.2f}×"


def day1_floor(d1):
    """What day 1 must add at least: the new media (less forwarded copies of files already
    stored) and the changed pages of msgstore.db; wa.db's few changed pages are left out."""
    ms = d1["msgstore"]
    return (d1["new_media"]["bytes"] - d1["forwarded_copies"]["bytes"]
            + ms["pages_changed"] * ms["page_size"])


def day1_line(d1):
    ms = d1["msgstore"]
    return (f"Day 1: {d1['new_messages']} new messages, {d1['edited_messages']} edited, "
            f"{d1['deleted_messages']} deleted; {d1['new_media']['files']} new media files "
            f"({fmt_bytes(d1['new_media']['bytes'])}, of which "
            f"{fmt_bytes(d1['forwarded_copies']['bytes'])} forwarded copies), "
            f"{d1['deleted_media']['files']} deleted; msgstore.db: {ms['pages_changed']} of "
            f"{ms['pages']} pages changed ({fmt_bytes(ms['pages_changed'] * ms['page_size'])}). "
            f"Least a backup must add: about {fmt_bytes(day1_floor(d1))}.")


def peers_report(results):
    b = best(results)
    tools = [t for t in results["tools"] if t in b]
    peers = [t for t in tools if t != "arca"]
    lines = []
    w = lines.append
    c = results.get("corpus", {})
    loads = [m["load1"] for m in results["runs"]]
    if loads:
        w(f"Load average (1 min) when the measurements started: {min(loads):.1f} to "
          f"{max(loads):.1f} (the machine was shared; not controlled).")
        w("")
    w(f"Corpus: scale {results['scale']}, {fmt_bytes(c.get('total_bytes'))} in "
      f"{c.get('media_files', 0) + 3} files (msgstore.db {fmt_bytes(c.get('databases', {}).get('msgstore.db'))}). "
      f"Rounds: {results['rounds']}; best value of each.")
    d1 = results.get("day1", {})
    if d1:
        w("")
        w(day1_line(d1))
    for metric, title, fmt in (("wall", "Wall time", fmt_s), ("cpu", "CPU time (user+sys)", fmt_s),
                               ("rss_mib", "Peak RSS", lambda v: f"{v:,.0f} MiB"),
                               ("added_bytes", "Bytes added to the repository", fmt_bytes),
                               ("repo_bytes", "Repository size after the phase", fmt_bytes)):
        w("")
        w(f"#### {title}")
        w("")
        w("| phase | " + " | ".join(tools) + " | arca / best peer |")
        w("|---|" + "---:|" * (len(tools) + 1))
        for ph in PHASES:
            if metric in ("added_bytes", "repo_bytes") and ph == "restore":
                continue
            vals = {t: b[t].get(ph, {}).get(metric) for t in tools}
            peer_vals = [vals[p] for p in peers if vals[p] is not None]
            best_peer = min(peer_vals) if peer_vals else None
            w(f"| {PHASE_TITLES[ph]} | " + " | ".join(fmt(vals[t]) if vals[t] is not None else "–"
                                                     for t in tools)
              + f" | {ratio(vals.get('arca'), best_peer)} |")
    w("")
    w("Restores compared with the corpus file by file (bytes; SQLite databases whose bytes "
      "differ by their logical content): " + ", ".join(
        f"{t} {'equal' if b[t].get('restore', {}).get('verified') else 'NOT EQUAL'}"
        for t in tools))
    for ph, what in (("day0", "Day-0 backup until its repository is on the disk"),
                     ("day1", "Day-1 backup until its repository is on the disk"),
                     ("restore", "Restore until its files are on the disk")):
        to_disk = {t: b[t].get(ph, {}).get("to_disk") for t in tools}
        if any(v is not None for v in to_disk.values()):
            peer_vals = [to_disk[p] for p in peers if to_disk[p] is not None]
            r = ratio(to_disk.get("arca"), min(peer_vals)) if peer_vals else "–"
            w("")
            w(f"{what} (wall time to exit plus the `sync` after it; a tool that writes "
              "through the page cache exits before its bytes are written): "
              + ", ".join(f"{t} {fmt_s(to_disk[t])}" for t in tools if to_disk[t] is not None)
              + f"; arca / best peer {r}.")
    notes = sorted({f"{m['tool']}: {n}" for m in results["runs"]
                    for n in m.get("verify_notes", []) + m.get("source_changes", [])})
    if notes:
        w("")
        w("Notes from the runs (restore comparisons; changes a tool made to the corpus it backed up):")
        w("")
        for n in notes:
            w(f"- {n}")
    w("")
    w("Local state besides the repository after day 1 (caches, config): " + ", ".join(
        f"{t} {fmt_bytes(b[t].get('day1', {}).get('state_bytes'))}" for t in tools))
    if results.get("missing"):
        w("")
        w("Not measured: " + "; ".join(f"{k}: {v}" for k, v in results["missing"].items()))
    fl = results.get("floor")
    if fl:
        w("")
        w("#### Machine floor")
        w("")
        rf = min(r["wall"] for r in results.get("read_floor", [{"wall": 0}]))
        w(f"- read the corpus (`find -exec cat`, page cache warm): {fmt_s(rf)}")
        if results.get("write_floor"):
            wf = min(results["write_floor"], key=lambda r: r["wall"])
            w(f"- write as many bytes to one file and fsync it (`dd conv=fsync`): "
              f"{fmt_s(wf['wall'])} ({wf['bytes'] / MIB / wf['wall']:,.0f} MiB/s)")
        if results.get("write_floor_direct"):
            wf = min(results["write_floor_direct"], key=lambda r: r["wall"])
            w(f"- the same past the page cache (`dd oflag=direct bs=1M`): "
              f"{fmt_s(wf['wall'])} ({wf['bytes'] / MIB / wf['wall']:,.0f} MiB/s)")
        for (work, threads), r in best_floor(results).items():
            w(f"- {FLOOR_TITLES.get(work, work)}, {threads} thread(s): {fmt_s(r['seconds'])} "
              f"({r['bytes'] / MIB / r['seconds']:,.0f} MiB/s)")
    w("")
    w("#### Targets (issue 5)")
    w("")
    for line in targets(results, b, peers):
        w(line)
    return "\n".join(lines) + "\n"


FLOOR_TITLES = {
    "read": "read (floor example, 4 MiB reads)",
    "cut": "read + keyed CDC cut (default sizes)",
    "hash_seal": "read + keyed BLAKE3 + XChaCha20-Poly1305 per 1 MiB chunk",
    "cut_hash_seal": "read + CDC cut + keyed BLAKE3 + XChaCha20-Poly1305",
}


def best_floor(results):
    """{(work, threads): fastest run} over the rounds."""
    out = {}
    for r in results.get("floor", {}).get("runs", []):
        k = (r["work"], r["threads"])
        if k not in out or r["seconds"] < out[k]["seconds"]:
            out[k] = r
    return out


def targets(results, b, peers):
    if "arca" not in b or not peers:
        return ["(needs arca and at least one peer)"]
    a = b["arca"]

    def best_peer(ph, k):
        vals = [(b[p][ph][k], p) for p in peers if ph in b[p] and b[p][ph].get(k) is not None]
        return min(vals) if vals else (None, None)

    out = []

    def row(ok, text):
        out.append(f"- {'**met**' if ok else '**not met**'}: {text}")

    floor_s = min((r["seconds"] for (work, _), r in best_floor(results).items()
                   if work == "hash_seal"), default=None)
    v, p = best_peer("day0", "wall")
    row(a["day0"]["wall"] <= 0.4 * v,
        f"day-0 wall ≤ 0.4 × fastest peer: arca {fmt_s(a['day0']['wall'])} vs {p} {fmt_s(v)} "
        f"= {a['day0']['wall'] / v:.2f}×")
    if floor_s:
        row(a["day0"]["wall"] <= 1.5 * floor_s,
            f"day-0 wall ≤ 1.5 × hash+seal floor: {fmt_s(a['day0']['wall'])} vs "
            f"{fmt_s(floor_s)} = {a['day0']['wall'] / floor_s:.2f}×")
    for ph in ("nochange", "day1", "restore"):
        v, p = best_peer(ph, "wall")
        row(a[ph]["wall"] <= 0.5 * v,
            f"{PHASE_TITLES[ph]} wall ≤ 0.5 × fastest peer: arca {fmt_s(a[ph]['wall'])} vs "
            f"{p} {fmt_s(v)} = {a[ph]['wall'] / v:.2f}×")
    v, p = best_peer("day1", "added_bytes")
    row(a["day1"]["added_bytes"] <= 0.5 * v,
        f"day-1 bytes added ≤ 0.5 × smallest peer: arca {fmt_bytes(a['day1']['added_bytes'])} vs "
        f"{p} {fmt_bytes(v)} = {a['day1']['added_bytes'] / v:.2f}×"
        + (f" (the least possible is about {fmt_bytes(day1_floor(results['day1']))}: arca adds "
           f"{a['day1']['added_bytes'] / day1_floor(results['day1']):.2f}× that)"
           if results.get("day1") else ""))
    for ph in PHASES:
        v, p = best_peer(ph, "rss_mib")
        row(a[ph]["rss_mib"] < v,
            f"{PHASE_TITLES[ph]} peak RSS below leanest peer: arca {a[ph]['rss_mib']:.0f} MiB vs "
            f"{p} {v:.0f} MiB = {a[ph]['rss_mib'] / v:.2f}×")
    v, p = best_peer("day1", "repo_bytes")
    row(a["day1"]["repo_bytes"] <= v,
        f"repository after day 1 ≤ smallest peer: arca {fmt_bytes(a['day1']['repo_bytes'])} vs "
        f"{p} {fmt_bytes(v)} = {a['day1']['repo_bytes'] / v:.2f}×")
    return out


def rss_range(m):
    lo, hi = m["rss_mib"], m.get("rss_mib_max", m["rss_mib"])
    return f"{lo:.0f}–{hi:.0f} MiB" if round(hi) != round(lo) else f"{lo:.0f} MiB"


def chunks_report(results):
    b = best(results)
    lines = [f"Corpus: scale {results['scale']}; rounds: {results['rounds']}; best value of each "
             "(peak RSS: lowest–highest over the rounds).", "",
             day1_line(results["day1"]) if results.get("day1") else "", "",
             "| chunker min/avg/max | pack | day-0 wall | day-0 CPU | day-0 RSS | repo after day 0 "
             "| day-1 wall | day-1 added | repo after day 1 | restore wall | restore RSS |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for cfg in results["configs"]:
        r = b.get(cfg["key"])
        if not r:
            continue
        d0, d1, rs = r["day0"], r["day1"], r["restore"]
        lines.append(
            f"| {cfg['label']} | {cfg['pack_size'] // MIB} MiB | {fmt_s(d0['wall'])} | "
            f"{fmt_s(d0['cpu'])} | {rss_range(d0)} | {fmt_bytes(d0['repo_bytes'])} | "
            f"{fmt_s(d1['wall'])} | {fmt_bytes(d1['added_bytes'])} | {fmt_bytes(d1['repo_bytes'])} | "
            f"{fmt_s(rs['wall'])} | {rss_range(rs)} |")
    return "\n".join(lines) + "\n"


def scaling_report(results):
    lines = ["| scale or files | corpus | files | day-0 wall | day-0 RSS | no-change wall | no-change RSS | "
             "day-1 wall | day-1 RSS | restore wall | restore RSS |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    b = best(results)
    for s in results["scales"]:
        key = f"arca@{s['scale']}"
        r = b.get(key)
        if not r:
            continue
        cells = []
        for ph in PHASES:
            cells += [fmt_s(r[ph]["wall"]), f"{r[ph]['rss_mib']:.0f} MiB"]
        lines.append(f"| {s['scale']} | {fmt_bytes(s['total_bytes'])} | {s['files']} | "
                     + " | ".join(cells) + " |")
    rss = {ph: [b[f"arca@{s['scale']}"][ph]["rss_mib"] for s in results["scales"]
                if f"arca@{s['scale']}" in b] for ph in PHASES}
    lines.append("")
    lines.append("Peak RSS spread (max/min over the sizes): " + ", ".join(
        f"{PHASE_TITLES[ph]} {max(v) / min(v):.2f}×" for ph, v in rss.items() if v))
    return "\n".join(lines) + "\n"


def report(results):
    head = [f"# {results['kind']} run", "",
            f"Command: `{results['command']}`  ",
            f"Started {results['started']}; machine: {json.dumps(results['machine'])}  ",
            "Versions: " + "; ".join(f"{k}: {v}" for k, v in results.get("versions", {}).items()),
            "Peak RSS from: " + ", ".join(
                sorted({r.get("rss_from", WAIT4_RSS) for r in results.get("runs", [])})),
            ""]
    body = {"peers": peers_report, "chunks": chunks_report, "scaling": scaling_report}[
        results["kind"]](results)
    return "\n".join(head) + "\n" + body


def save(results, out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    try:
        (out / "report.md").write_text(report(results))
    except (KeyError, ValueError, ZeroDivisionError, TypeError):
        pass  # partial results; the full report is written at the end


# ---------------------------------------------------------------------------------------------
# Subcommands


def start(args, kind):
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    (work / "logs").mkdir(parents=True)
    results = {"kind": kind, "command": " ".join(["python3", "bench/run.py"] + sys.argv[1:]),
               "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine(),
               "scale": getattr(args, "scale", None), "rounds": args.rounds, "seed": args.seed,
               "runs": [], "init_bytes": {}}
    return work, results


def finish(args, work, results):
    save(results, args.out)
    print(report(results))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


def cmd_peers(args):
    work, results = start(args, "peers")
    exe, arca_version = arca_exe(args)
    names = [t for t in args.tools.split(",") if t != "arca"]
    found, missing = install_peers(names, args.no_install)
    results["missing"] = missing
    for name, why in missing.items():
        log(f"{name} is not available, going on without it: {why[:200]}")
    tools = [Arca(exe, work / "arca")] if "arca" in args.tools.split(",") else []
    tools += [PEERS[n](found[n], work / n) for n in names if n in found]
    for t in tools:
        t.key = t.name
        if t.name == "arca":
            t.version_str = arca_version
    results["tools"] = [t.key for t in tools]
    results["versions"] = {t.key: t.version() for t in tools}
    rounds(tools, args, work, results, floors=True)
    finish(args, work, results)


def cmd_chunks(args):
    work, results = start(args, "chunks")
    exe, arca_version = arca_exe(args)
    configs = []
    for spec in args.configs.split(";"):
        chunker, pack = spec.split("/")
        mn, avg, mx = (parse_size(x) for x in chunker.split(","))
        pack = parse_size(pack)
        label = "/".join(fmt_size(x) for x in (mn, avg, mx))
        configs.append({"key": f"arca {label} p{pack // MIB}", "label": label,
                        "chunker": f"{mn},{avg},{mx}", "pack_size": pack})
    results["configs"] = configs
    tools = []
    for cfg in configs:
        t = Arca(exe, work / slug(cfg["key"]), cfg["chunker"],
                 cfg["pack_size"])
        t.key = cfg["key"]
        tools.append(t)
    results["tools"] = [t.key for t in tools]
    results["versions"] = {"arca": arca_version}
    rounds(tools, args, work, results, with_nochange=False)
    finish(args, work, results)


def cmd_scaling(args):
    work, results = start(args, "scaling")
    exe, arca_version = arca_exe(args)
    results["versions"] = {"arca": arca_version}
    results["scales"] = []
    corpus = work / "corpus"
    if args.files:
        sizes = [("files", int(float(n))) for n in args.files.split(",")]
    else:
        sizes = [("scale", float(s)) for s in args.scales.split(",")]
    for unit, size in sizes:
        def generate():
            if unit == "files":
                return files_generate(corpus, size, args.seed)
            return corpus_generate(corpus, size, args.seed)
        log(f"{unit} {size}: generating corpus")
        c = generate()
        results["scales"].append({"scale": size, "unit": unit, "total_bytes": c["total_bytes"],
                                  "files": c["files"] if unit == "files"
                                  else c["media_files"] + 2})
        t = Arca(exe, work / "arca")
        t.key = f"arca@{size}"
        for rnd in range(1, args.rounds + 1):
            if rnd > 1:
                generate()
            read_corpus(corpus)
            setup(t, work, rnd)
            phase(t, corpus, "day0", "day0", work, results, rnd)
            phase(t, corpus, "nochange", "nochange", work, results, rnd)
            if unit == "files":
                files_day(corpus, 1)
            else:
                corpus_day(corpus, 1)
            phase(t, corpus, "day1", "day1", work, results, rnd)
            restore_phase(t, corpus, work, results, rnd)
            shutil.rmtree(t.base, ignore_errors=True)
            save(results, args.out)
        shutil.rmtree(corpus, ignore_errors=True)
    finish(args, work, results)


def cmd_report(args):
    results = json.loads(Path(args.results).read_text())
    print(report(results))


def parse_size(s):
    s = s.strip().upper()
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(s[-1:], 1)
    return int(float(s.rstrip("KMG")) * mult)


def fmt_size(n):
    for unit, m in (("M", 1 << 20), ("K", 1 << 10)):
        if n % m == 0:
            return f"{n // m}{unit}"
    return str(n)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sp = ap.add_subparsers(dest="cmd", required=True)

    def common(p):
        p.add_argument("--out", required=True, help="folder for results.json and report.md")
        p.add_argument("--work", default="/tmp/arca-bench",
                       help="scratch folder for corpora, repositories, restores (deleted first)")
        p.add_argument("--rounds", type=int, default=2,
                       help="repetitions; the best value of each measurement is reported")
        p.add_argument("--seed", type=int, default=1)
        p.add_argument("--arca", help="measure this arca binary instead of building one")
        p.add_argument("--arca-rev", default="HEAD",
                       help="commit to build arca from (git archive into --build-dir), "
                            "or 'worktree' to build the work tree in place")
        p.add_argument("--build-dir", default="/tmp/arca-bench-build",
                       help="where --arca-rev is unpacked and built (kept between runs)")
        p.add_argument("--no-build", action="store_true",
                       help="do not build the floor example (use target/release/examples/floor)")
        p.add_argument("--keep", action="store_true", help="keep --work afterwards")

    p = sp.add_parser("peers", help="arca against restic, borg and rustic")
    common(p)
    p.add_argument("--scale", type=float, default=0.25)
    p.add_argument("--tools", default="arca,restic,borg,rustic")
    p.add_argument("--no-install", action="store_true", help="do not install missing peers")
    p.set_defaults(func=cmd_peers)

    p = sp.add_parser("chunks", help="arca with several chunk and pack sizes")
    common(p)
    p.add_argument("--scale", type=float, default=0.25)
    p.add_argument("--configs",
                   default="64K,256K,1M/16M;128K,512K,2M/16M;256K,1M,4M/16M;512K,2M,8M/16M;"
                           "256K,1M,4M/8M;256K,1M,4M/32M",
                   help="min,avg,max/pack;... (sizes in bytes, or with K/M)")
    p.set_defaults(func=cmd_chunks)

    p = sp.add_parser("scaling", help="arca alone at several scales")
    common(p)
    p.add_argument("--scales", default="0.25,1,4",
                   help="corpus scales (scale 1 is ~2.1 GiB; every scale needs about 3x its "
                        "corpus in free space: corpus, repository, restore)")
    p.add_argument("--files",
                   help="instead of --scales: numbers of small files (corpus.py files), "
                        "e.g. 100000,300000,1000000")
    p.set_defaults(func=cmd_scaling, rounds=1)

    p = sp.add_parser("report", help="print the report of a results.json")
    p.add_argument("results")
    p.set_defaults(func=cmd_report)

    args = ap.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
