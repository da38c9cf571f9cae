#!/usr/bin/env python3
"""Deterministic benchmark corpora for arca (standard library only, Python 3.11).

Subcommands
  generate      a chat-app data folder (SQLite message store, contacts db in WAL
                mode, media tree with forwarded byte-identical copies)
  day           apply one deterministic "day of use" to a generated folder
  sqlite-churn  change about a given fraction of a SQLite file's pages and report
                how many pages actually changed
  mixed         a mixed folder: source tree, documents, large binaries, one db
  files         many small files: a chat app's thumbnails, stickers, avatars and
                JSON caches (for the scaling run by file count)
  files-day     one day of use of a `files` folder: new, rewritten and deleted files

Everything is derived from --seed (and the day number for `day`) through
string-seeded random.Random instances, so the same command with the same
Python/SQLite versions produces byte-identical files (file mtimes are set to
deterministic values too).  See bench/README.md.
"""

import argparse
import hashlib
import json
import math
import os
import random
import shutil
import sqlite3
import struct
import sys
import time

CORPUS_VERSION = 1
END_TS = 1717200000            # 2024-06-01T00:00:00Z: end of generated history
HISTORY_DAYS = 3 * 365         # history spans ~3 years before END_TS
DAY_S = 86400
MB = 1 << 20
CHUNK = 4 * MB                 # random-data write block

# Scale-1 targets.
BASE_MESSAGES = 1_500_000
BASE_CHATS = 300
BASE_CONTACTS = 3000
BASE_MEDIA_BYTES = 2 * 1000 ** 3
MEDIA_SHARE = {"video": 0.60, "images": 0.25, "voice": 0.10, "documents": 0.05}
FORWARD_FRACTION = 0.05
# Which originals get forwarded (relative odds per file, by category).
FORWARD_WEIGHT = {"images": 4.0, "video": 3.0, "documents": 2.0, "voice": 0.5}
DAY_NEW_MESSAGES = 3000
DAY_EDITS = 300
DAY_DELETES = 200
DAY_NEW_MEDIA = 40
DAY_DELETED_MEDIA = 8

# (median bytes, lognormal sigma, min, max) per media category.
MEDIA_SIZE = {
    "images": (300_000, 0.8, 50_000, 3_000_000),
    "video": (7_000_000, 0.8, 1_000_000, 50_000_000),
    "voice": (70_000, 0.9, 10_000, 500_000),
    "documents": (250_000, 1.1, 20_000, 5_000_000),
}
# Relative number of new media per day by category (counts, not bytes).
DAY_MEDIA_COUNT_WEIGHTS = {"images": 45, "voice": 40, "video": 8, "documents": 7}

EMOJI = ["😂", "❤️", "👍", "🙏", "😍", "😭", "😊", "🎉", "🔥", "😅", "🤣", "😘",
         "👍🏽", "👌", "💪", "🙈", "😎", "🤔", "😢", "🥰", "✨", "👏", "🙄", "😉",
         "😁", "💯", "🤷‍♀️", "🤦‍♂️", "🎂", "☀️", "🌧️", "🍕", "🍻", "⚽", "🚗", "🏠",
         "📷", "🎶", "👀", "🇩🇪"]

ONSETS = ["", "", "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r",
          "s", "t", "v", "w", "z", "br", "ch", "cl", "dr", "fl", "gr", "kr", "pl",
          "pr", "sh", "sk", "sl", "st", "str", "th", "tr"]
VOWELS = ["a", "e", "i", "o", "u", "a", "e", "o", "ai", "ea", "ee", "io", "oo",
          "ou", "y"]
CODAS = ["", "", "", "", "n", "r", "s", "t", "l", "m", "nd", "ng", "rk", "st", "x"]


# --------------------------------------------------------------------------- #
# helpers

def sub_rng(seed, *parts):
    """Independent deterministic stream; str seeds are hashed with SHA-512."""
    return random.Random(":".join(str(p) for p in (seed,) + parts))


def lognorm_size(rng, median, sigma, lo, hi):
    v = int(median * math.exp(rng.gauss(0.0, sigma)))
    return max(lo, min(hi, v))


def ms_date(ms, fmt):
    return time.strftime(fmt, time.gmtime(ms // 1000))


def dir_bytes(path):
    total = files = 0
    for root, _dirs, names in os.walk(path):
        for n in names:
            try:
                total += os.path.getsize(os.path.join(root, n))
                files += 1
            except OSError:
                pass
    return files, total


def sqlite_page_size(path):
    with open(path, "rb") as f:
        hdr = f.read(100)
    if len(hdr) < 100 or not hdr.startswith(b"SQLite format 3\x00"):
        raise SystemExit(f"{path}: not a SQLite 3 database")
    ps = struct.unpack(">H", hdr[16:18])[0]
    return 65536 if ps == 1 else ps


def page_hashes(path, page_size):
    out = []
    with open(path, "rb") as f:
        while True:
            buf = f.read(page_size * 512)
            if not buf:
                break
            mv = memoryview(buf)
            for i in range(0, len(buf), page_size):
                out.append(hashlib.blake2b(mv[i:i + page_size], digest_size=16).digest())
    return out


def pages_changed(before, after):
    n = sum(1 for a, b in zip(before, after) if a != b)
    return n + abs(len(after) - len(before))


def prepare_out(out, force):
    if os.path.exists(out):
        if not os.path.isdir(out):
            raise SystemExit(f"{out} exists and is not a directory")
        if os.listdir(out):
            if not force:
                raise SystemExit(f"{out} is not empty (use --force to replace it)")
            shutil.rmtree(out)
    os.makedirs(out, exist_ok=True)


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


# --------------------------------------------------------------------------- #
# text

class TextGen:
    """Zipf-distributed pseudo-word vocabulary."""

    def __init__(self, seed, n_words=4000, exponent=1.05):
        r = sub_rng(seed, "vocab")
        seen, words = set(), []
        while len(words) < n_words:
            nsyl = r.choices((1, 2, 3, 4), weights=(30, 40, 22, 8))[0]
            w = "".join(r.choice(ONSETS) + r.choice(VOWELS) + r.choice(CODAS)
                        for _ in range(nsyl))
            if len(w) == 1 and sum(1 for x in words if len(x) == 1) >= 3:
                continue
            if 1 <= len(w) <= 14 and w not in seen:
                seen.add(w)
                words.append(w)
        # Frequent words tend to be short.
        keyed = sorted((len(w) + r.random() * 7, w) for w in words)
        self.words = [w for _k, w in keyed]
        acc, cum = 0.0, []
        for i in range(n_words):
            acc += 1.0 / (i + 2.7) ** exponent
            cum.append(acc)
        self.cum = cum

    def words_k(self, rng, k):
        return rng.choices(self.words, cum_weights=self.cum, k=k)

    def phrase(self, rng, lo, hi, cap=True):
        s = " ".join(self.words_k(rng, rng.randint(lo, hi)))
        return s.title() if cap else s

    def messages(self, rng, n):
        """n chat-message texts, 1-60 words, some emoji / links."""
        rnd = rng.random
        lv = rng.lognormvariate
        lens = [min(60, 1 + int(lv(1.45, 0.95))) for _ in range(n)]
        pool = self.words_k(rng, sum(lens))
        out, pos = [], 0
        for ln in lens:
            x = rnd()
            if x < 0.02:
                out.append("".join(rng.choices(EMOJI, k=rng.randint(1, 4))))
                pos += ln
                continue
            s = " ".join(pool[pos:pos + ln])
            pos += ln
            if rnd() < 0.6:
                s = s[0].upper() + s[1:]
            y = rnd()
            if y < 0.25:
                s += "."
            elif y < 0.35:
                s += "?"
            elif y < 0.40:
                s += "!"
            if rnd() < 0.10:
                s += " " + "".join(rng.choices(EMOJI, k=rng.randint(1, 3)))
            if rnd() < 0.008:
                s += " https://www.%s.com/%s/%d" % (pool[pos - 1], pool[pos - ln],
                                                    rng.randint(1000, 99999))
            out.append(s)
        return out

    def prose(self, rng, nbytes, line_words=12):
        """About nbytes of compressible text (ASCII)."""
        parts, size = [], 0
        while size < nbytes:
            k = max(64, (nbytes - size) // 6 + 16)
            ws = self.words_k(rng, k)
            for i in range(0, len(ws), line_words):
                line = " ".join(ws[i:i + line_words])
                line = line[0].upper() + line[1:] + ".\n"
                parts.append(line)
                size += len(line)
                if size >= nbytes:
                    break
        return "".join(parts).encode()[:nbytes]


# --------------------------------------------------------------------------- #
# media files

MEDIA_EXT = {"images": ("jpg", "image/jpeg", "IMG"),
             "video": ("mp4", "video/mp4", "VID"),
             "voice": ("opus", "audio/ogg; codecs=opus", "PTT")}
DOC_TYPES = [("pdf", "application/pdf", 70),
             ("docx", "application/vnd.openxmlformats-officedocument."
                      "wordprocessingml.document", 20),
             ("txt", "text/plain", 10)]


def media_header(cat, ext, size, rng):
    if cat == "images":
        head = (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
                b"\xff\xdb\x00\x43\x00")
        return head, b"\xff\xd9"
    if cat == "video":
        ftyp = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41"
        mdat = struct.pack(">I", max(8, size - len(ftyp))) + b"mdat"
        return ftyp + mdat, b""
    if cat == "voice":
        serial = rng.getrandbits(32)
        page = (b"OggS\x00\x02" + b"\x00" * 8 + struct.pack("<I", serial)
                + b"\x00" * 8 + b"\x01\x13" + b"OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00")
        return page, b""
    if ext == "docx":
        return (b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00"
                b"[Content_Types].xml"), b"PK\x05\x06" + b"\x00" * 18
    return b"", b""


def write_random_file(path, head, tail, size, rng):
    h = hashlib.sha256()
    body = max(0, size - len(head) - len(tail))
    with open(path, "wb") as f:
        f.write(head)
        h.update(head)
        while body > 0:
            n = min(body, CHUNK)
            b = rng.randbytes(n)
            f.write(b)
            h.update(b)
            body -= n
        f.write(tail)
        h.update(tail)
    return len(head) + max(0, size - len(head) - len(tail)) + len(tail), h.hexdigest()


def pdf_bytes(size, rng, tg):
    """Partly compressible: ~half plain text objects, ~half random 'Flate' streams."""
    parts = [b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"]
    total, obj = len(parts[0]), 1
    while total < size - 64:
        if rng.random() < 0.55:
            txt = tg.prose(rng, rng.randint(5_000, 50_000))
            body = (b"BT /F1 11 Tf 72 720 Td\n(" + txt.replace(b"\n", b") Tj T* (")
                    + b") Tj\nET\n")
            piece = b"%d 0 obj\n<< /Length %d >>\nstream\n" % (obj, len(body)) + body
        else:
            n = rng.randint(5_000, 60_000)
            piece = (b"%d 0 obj\n<< /Length %d /Filter /FlateDecode >>\nstream\n" % (obj, n)
                     + rng.randbytes(n))
        piece += b"\nendstream\nendobj\n"
        parts.append(piece)
        total += len(piece)
        obj += 1
    parts.append(b"trailer\n<< /Size %d /Root 1 0 R >>\n%%%%EOF\n" % obj)
    data = b"".join(parts)
    return data


def write_media_file(path, cat, ext, size, rng, tg):
    """Write one media file; return (size, sha256 hex)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if cat == "documents" and ext in ("pdf", "txt"):
        data = pdf_bytes(size, rng, tg) if ext == "pdf" else tg.prose(rng, size)
        with open(path, "wb") as f:
            f.write(data)
        return len(data), hashlib.sha256(data).hexdigest()
    head, tail = media_header(cat, ext, size, rng)
    return write_random_file(path, head, tail, size, rng)


class MediaNamer:
    """WhatsApp-like names: media/images/2023-05/IMG-20230514-WA0012.jpg."""

    def __init__(self, root):
        self.root = root
        self.counters = {}

    def relpath(self, cat, ext, ms, sent, rng, tg):
        day = ms_date(ms, "%Y%m%d")
        sub = "Sent" if sent else ms_date(ms, "%Y-%m")
        while True:
            key = (cat, day)
            c = self.counters.get(key, 0) + 1
            self.counters[key] = c
            if cat == "documents":
                base = "%s_%s_%s" % (tg.words_k(rng, 1)[0], tg.words_k(rng, 1)[0], day)
                name = "%s-%d.%s" % (base, c, ext)
            else:
                name = "%s-%s-WA%04d.%s" % (MEDIA_EXT[cat][2], day, c, ext)
            rel = "media/%s/%s/%s" % (cat, sub, name)
            if not os.path.exists(os.path.join(self.root, rel)):
                return rel


def pick_doc_type(rng):
    ext, mime, _w = rng.choices(DOC_TYPES, weights=[d[2] for d in DOC_TYPES])[0]
    return ext, mime


def media_ext_mime(cat, rng):
    if cat == "documents":
        return pick_doc_type(rng)
    ext, mime, _p = MEDIA_EXT[cat]
    return ext, mime


# --------------------------------------------------------------------------- #
# message store

MSGSTORE_SCHEMA = """
CREATE TABLE props(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE chat(
  id INTEGER PRIMARY KEY,
  jid TEXT NOT NULL UNIQUE,
  subject TEXT,
  created INTEGER NOT NULL,
  archived INTEGER NOT NULL DEFAULT 0,
  last_message_id INTEGER
);
CREATE TABLE message(
  id INTEGER PRIMARY KEY,
  chat_id INTEGER NOT NULL,
  from_me INTEGER NOT NULL,
  timestamp INTEGER NOT NULL,
  text TEXT,
  status INTEGER NOT NULL,
  media_id INTEGER
);
CREATE INDEX message_chat_ts ON message(chat_id, timestamp);
CREATE INDEX message_ts ON message(timestamp);
CREATE INDEX message_media ON message(media_id) WHERE media_id IS NOT NULL;
CREATE TABLE media(
  id INTEGER PRIMARY KEY,
  path TEXT NOT NULL UNIQUE,
  mime TEXT NOT NULL,
  size INTEGER NOT NULL,
  sha256 TEXT NOT NULL
);
CREATE INDEX media_sha256 ON media(sha256);
"""


def make_chats(seed, n_chats, tg):
    """[(id, jid, subject, created_ms, is_group, weight, p_from_me)]"""
    r = sub_rng(seed, "chats")
    start_ms = (END_TS - HISTORY_DAYS * DAY_S) * 1000
    chats, jids = [], set()
    for cid in range(1, n_chats + 1):
        group = r.random() < 0.25
        while True:
            jid = ("120363%012d@g.us" % r.randrange(10 ** 12) if group
                   else "49%010d@s.whatsapp.net" % r.randrange(10 ** 10))
            if jid not in jids:
                jids.add(jid)
                break
        subject = tg.phrase(r, 1, 4) if group else None
        created = start_ms - r.randrange(2 * 365 * DAY_S * 1000)
        chats.append([cid, jid, subject, created, group, 0.0,
                      0.15 if group else r.uniform(0.35, 0.55)])
    weights = [1.0 / (i + 1) ** 0.9 for i in range(n_chats)]
    r.shuffle(weights)
    for c, w in zip(chats, weights):
        c[5] = w
    return chats


def create_msgstore(path, chats):
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA page_size=4096")
    con.execute("PRAGMA journal_mode=DELETE")
    con.execute("PRAGMA cache_size=-131072")
    con.execute("BEGIN")
    for stmt in MSGSTORE_SCHEMA.split(";"):
        if stmt.strip():
            con.execute(stmt)
    con.executemany("INSERT INTO props VALUES (?,?)",
                    [("schema_version", "1"), ("generator", "arca bench/corpus.py")])
    con.executemany("INSERT INTO chat(id, jid, subject, created) VALUES (?,?,?,?)",
                    [(c[0], c[1], c[2], c[3]) for c in chats])
    return con


def fill_messages(con, rng, tg, n_msgs, chats, start_ms, end_ms, slots):
    """Stream n_msgs messages in time order.  `slots` is a list of dicts with a
    'pos' (message index, ascending), 'cat' and 'copy'; each gets 'msg_id',
    'ts', 'chat_id' filled in and the message references media id slot['id']."""
    chat_ids = [c[0] for c in chats]
    cum, acc = [], 0.0
    for c in chats:
        acc += c[5]
        cum.append(acc)
    pfm = {c[0]: c[6] for c in chats}
    mean_gap = (end_ms - start_ms) / max(1, n_msgs)
    p_burst, burst_gap = 0.55, 40_000.0
    if mean_gap <= p_burst * burst_gap * 1.5:
        p_burst = 0.0
    other_gap = (mean_gap - p_burst * burst_gap) / (1.0 - p_burst)
    rnd, expo = rng.random, rng.expovariate
    t = float(start_ms)
    prev_cid = chat_ids[0]
    si, nslots = 0, len(slots)
    next_pos = slots[0]["pos"] if slots else -1
    i = 0
    ins = "INSERT INTO message VALUES (?,?,?,?,?,?,?)"
    while i < n_msgs:
        k = min(20_000, n_msgs - i)
        texts = tg.messages(rng, k)
        picks = rng.choices(chat_ids, cum_weights=cum, k=k)
        rows = []
        for j in range(k):
            if rnd() < p_burst:
                cid = prev_cid
                t += expo(1.0 / burst_gap)
            else:
                cid = picks[j]
                t += expo(1.0 / other_gap)
            prev_cid = cid
            ts = min(int(t), end_ms - 1)
            fm = 1 if rnd() < pfm[cid] else 0
            status = (13 if rnd() < 0.97 else 5) if fm else 0
            text, mid = texts[j], None
            idx = i + j
            if idx == next_pos:
                s = slots[si]
                mid = s["id"]
                if s["copy"]:
                    fm, status = 1, 13
                cat = s["cat"]
                if cat in ("images", "video"):
                    text = text if rnd() < 0.25 else None
                else:
                    text = None     # documents get their name later
                s["msg_id"], s["ts"], s["chat_id"] = idx + 1, ts, cid
                si += 1
                next_pos = slots[si]["pos"] if si < nslots else -1
            rows.append((idx + 1, cid, fm, ts, text, status, mid))
        con.executemany(ins, rows)
        i += k


def plan_media(rng, total_bytes):
    """Originals sized per category budget, then forwarded copies interleaved.
    Returns slot list (time order) with 'cat', 'size', 'copy', 'src'."""
    # Copies are ~5% of files but mostly images/videos: roughly 3% extra bytes.
    orig_budget = total_bytes / 1.03
    originals = []
    for cat in ("video", "images", "voice", "documents"):
        budget = orig_budget * MEDIA_SHARE[cat]
        med, sig, lo, hi = MEDIA_SIZE[cat]
        got = 0
        while budget - got >= lo:
            s = min(lognorm_size(rng, med, sig, lo, hi), int(budget - got))
            originals.append((cat, max(lo, s)))
            got += max(lo, s)
    rng.shuffle(originals)
    n_orig = len(originals)
    n_copy = int(round(n_orig * FORWARD_FRACTION)) if n_orig >= 2 else 0
    n_slots = n_orig + n_copy
    copy_pos = set(rng.sample(range(1, n_slots), n_copy)) if n_copy else set()
    slots, orig_slots, oi = [], [], 0
    for p in range(n_slots):
        if p in copy_pos:
            src = rng.choices(orig_slots,
                              weights=[FORWARD_WEIGHT[slots[q]["cat"]] for q in orig_slots])[0]
            slots.append({"id": p + 1, "cat": slots[src]["cat"],
                          "size": slots[src]["size"], "copy": True, "src": src})
        else:
            cat, size = originals[oi]
            oi += 1
            orig_slots.append(p)
            slots.append({"id": p + 1, "cat": cat, "size": size, "copy": False,
                          "src": None})
    return slots


def build_msgstore(path, seed, tg, n_msgs, n_chats, slots=()):
    chats = make_chats(seed, n_chats, tg)
    start_ms = (END_TS - HISTORY_DAYS * DAY_S) * 1000
    end_ms = END_TS * 1000
    rng = sub_rng(seed, "messages")
    if slots:
        positions = sorted(rng.sample(range(n_msgs), len(slots)))
        for s, p in zip(slots, positions):
            s["pos"] = p
    con = create_msgstore(path, chats)
    fill_messages(con, rng, tg, n_msgs, chats, start_ms, end_ms, list(slots))
    return con, chats


def finish_msgstore(con):
    con.execute("UPDATE chat SET last_message_id = "
                "(SELECT max(id) FROM message WHERE message.chat_id = chat.id)")
    con.execute("COMMIT")
    con.execute("ANALYZE")
    con.close()


# --------------------------------------------------------------------------- #
# contacts db (WAL)

def build_wa_db(path, seed, tg, chats, n_contacts):
    r = sub_rng(seed, "contacts")
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA page_size=4096")
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("BEGIN")
    con.execute("""CREATE TABLE wa_contacts(
        _id INTEGER PRIMARY KEY, jid TEXT UNIQUE, is_whatsapp_user INTEGER NOT NULL,
        status TEXT, status_timestamp INTEGER, number TEXT, display_name TEXT,
        given_name TEXT, family_name TEXT, photo_ts INTEGER)""")
    con.execute("CREATE INDEX wa_contacts_name ON wa_contacts(display_name)")
    con.execute("CREATE TABLE wa_props(prop_name TEXT PRIMARY KEY, prop_value TEXT)")
    jids = [c[1] for c in chats if not c[4]]
    seen = set(jids)
    while len(jids) < n_contacts:
        j = "49%010d@s.whatsapp.net" % r.randrange(10 ** 10)
        if j not in seen:
            seen.add(j)
            jids.append(j)
    r.shuffle(jids)
    rows = []
    for i, j in enumerate(jids, 1):
        given, family = tg.phrase(r, 1, 1), tg.phrase(r, 1, 1)
        status = tg.phrase(r, 1, 8, cap=False) if r.random() < 0.6 else None
        rows.append((i, j, 1 if r.random() < 0.9 else 0, status,
                     (END_TS - r.randrange(HISTORY_DAYS * DAY_S)) * 1000,
                     "+" + j.split("@")[0], given + " " + family, given, family,
                     r.randrange(END_TS - HISTORY_DAYS * DAY_S, END_TS)))
    con.executemany("INSERT INTO wa_contacts VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
    con.executemany("INSERT INTO wa_props VALUES (?,?)",
                    [("version", "1"), ("contacts", str(len(rows)))])
    con.execute("COMMIT")
    con.close()
    return len(rows)


# --------------------------------------------------------------------------- #
# generate

def scaled(base, scale, minimum):
    return max(minimum, int(round(base * scale)))


def cmd_generate(a):
    t0 = time.time()
    if a.scale <= 0:
        raise SystemExit("--scale must be > 0")
    out = a.out
    prepare_out(out, a.force)
    seed = a.seed
    tg = TextGen(seed)
    os.makedirs(os.path.join(out, "databases"))
    os.makedirs(os.path.join(out, "media"))

    slots = plan_media(sub_rng(seed, "media-plan"), BASE_MEDIA_BYTES * a.scale)
    n_msgs = max(scaled(BASE_MESSAGES, a.scale, 200), 2 * len(slots))
    n_chats = scaled(BASE_CHATS, a.scale, 5)

    db_path = os.path.join(out, "databases", "msgstore.db")
    con, chats = build_msgstore(db_path, seed, tg, n_msgs, n_chats, slots)
    t_msgs = time.time() - t0

    # media files, in message-time order
    namer = MediaNamer(out)
    stats = {c: {"files": 0, "bytes": 0} for c in MEDIA_SHARE}
    fwd = {"files": 0, "bytes": 0}
    rows = []
    for p, s in enumerate(slots):
        frng = sub_rng(seed, "media", p)
        if s["copy"]:
            src = slots[s["src"]]
            ext = src["ext"]
            rel = namer.relpath(s["cat"], ext, s["ts"], True, frng, tg)
            os.makedirs(os.path.dirname(os.path.join(out, rel)), exist_ok=True)
            shutil.copyfile(os.path.join(out, src["rel"]), os.path.join(out, rel))
            size, sha, mime = src["size"], src["sha"], src["mime"]
            fwd["files"] += 1
            fwd["bytes"] += size
        else:
            ext, mime = media_ext_mime(s["cat"], frng)
            rel = namer.relpath(s["cat"], ext, s["ts"], False, frng, tg)
            size, sha = write_media_file(os.path.join(out, rel), s["cat"], ext,
                                         s["size"], frng, tg)
        s.update(ext=ext, rel=rel, size=size, sha=sha, mime=mime)
        secs = s["ts"] // 1000
        os.utime(os.path.join(out, rel), (secs, secs))
        stats[s["cat"]]["files"] += 1
        stats[s["cat"]]["bytes"] += size
        rows.append((s["id"], rel, mime, size, sha))
    con.executemany("INSERT INTO media VALUES (?,?,?,?,?)", rows)
    con.executemany("UPDATE message SET text = ? WHERE id = ?",
                    [(os.path.basename(s["rel"]), s["msg_id"]) for s in slots
                     if s["cat"] == "documents"])
    finish_msgstore(con)
    t_media = time.time() - t0 - t_msgs

    wa_path = os.path.join(out, "databases", "wa.db")
    n_contacts = build_wa_db(wa_path, seed, tg, chats,
                             max(scaled(BASE_CONTACTS, a.scale, 300), n_chats))
    for p in (db_path, wa_path):
        os.utime(p, (END_TS, END_TS))

    media_files = sum(v["files"] for v in stats.values())
    media_bytes = sum(v["bytes"] for v in stats.values())
    info = {
        "kind": "chat-app",
        "corpus_version": CORPUS_VERSION,
        "seed": seed,
        "scale": a.scale,
        "history": {"start": END_TS - HISTORY_DAYS * DAY_S, "end": END_TS},
        "chats": n_chats,
        "messages": n_msgs,
        "contacts": n_contacts,
        "media": stats,
        "media_files": media_files,
        "media_bytes": media_bytes,
        "forwarded_copies": fwd,
        "databases": {"msgstore.db": os.path.getsize(db_path),
                      "wa.db": os.path.getsize(wa_path)},
        "total_bytes": media_bytes + os.path.getsize(db_path) + os.path.getsize(wa_path),
        "days_applied": [],
    }
    write_json(os.path.join(out, ".corpus.json"), info)
    summary = dict(info)
    summary.pop("days_applied")
    summary["seconds"] = {"messages": round(t_msgs, 2), "media": round(t_media, 2),
                          "total": round(time.time() - t0, 2)}
    print(json.dumps(summary, indent=2, sort_keys=True))


# --------------------------------------------------------------------------- #
# day

def load_info(d):
    p = os.path.join(d, ".corpus.json")
    if not os.path.exists(p):
        raise SystemExit(f"{p} not found: run `generate` first")
    with open(p) as f:
        return json.load(f)


def pick_existing(con, rng, lo, hi, where, n, exclude):
    """n distinct rowids spread uniformly over [lo, hi] satisfying `where`."""
    out, tries = [], 0
    q = f"SELECT id FROM message WHERE id >= ? AND {where} ORDER BY id LIMIT 1"
    while len(out) < n and tries < n * 20:
        tries += 1
        row = con.execute(q, (rng.randint(lo, hi),)).fetchone()
        if row and row[0] not in exclude:
            exclude.add(row[0])
            out.append(row[0])
    return out


def cmd_day(a):
    t0 = time.time()
    d = a.dir
    info = load_info(d)
    if info.get("kind") != "chat-app":
        raise SystemExit(f"{d} is not a chat-app corpus")
    if a.day < 1:
        raise SystemExit("--day must be >= 1")
    seed = a.seed if a.seed is not None else info["seed"]
    scale = a.scale if a.scale is not None else info["scale"]
    tg = TextGen(seed)
    rng = sub_rng(seed, "day", a.day)
    db_path = os.path.join(d, "databases", "msgstore.db")
    wa_path = os.path.join(d, "databases", "wa.db")
    ps = sqlite_page_size(db_path)
    before = page_hashes(db_path, ps)

    day_start = (END_TS + (a.day - 1) * DAY_S) * 1000
    n_new = scaled(DAY_NEW_MESSAGES * rng.uniform(0.8, 1.2), scale, 30)
    n_edit = scaled(DAY_EDITS * rng.uniform(0.8, 1.2), scale, 5)
    n_del = scaled(DAY_DELETES * rng.uniform(0.8, 1.2), scale, 5)
    n_media = scaled(DAY_NEW_MEDIA * rng.uniform(0.7, 1.3), scale, 4)
    n_mdel = scaled(DAY_DELETED_MEDIA * rng.uniform(0.5, 1.5), scale, 1)

    con = sqlite3.connect(db_path, isolation_level=None)
    txns = 0

    def txn(fn):
        nonlocal txns
        con.execute("BEGIN IMMEDIATE")
        try:
            fn()
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        txns += 1

    lo, hi = con.execute("SELECT min(id), max(id) FROM message").fetchone()
    if lo is None:
        raise SystemExit("message table is empty")
    chats = con.execute("SELECT id, jid FROM chat ORDER BY id").fetchall()
    chat_ids = [c[0] for c in chats]
    group = {c[0]: c[1].endswith("@g.us") for c in chats}

    # --- new messages (with a few new media), committed in conversation bursts
    active = rng.sample(chat_ids, max(1, min(len(chat_ids), int(len(chat_ids) * rng.uniform(0.1, 0.3)) + 1)))
    weights = [1.0 / (i + 1) ** 0.9 for i in range(len(active))]
    # Diurnal: more messages in the afternoon/evening.
    hour_w = [0.2, 0.1, 0.05, 0.05, 0.05, 0.1, 0.4, 0.8, 1.0, 1.0, 1.0, 1.1,
              1.3, 1.1, 1.0, 1.0, 1.1, 1.3, 1.5, 1.7, 1.8, 1.6, 1.1, 0.6]
    hours = rng.choices(range(24), weights=hour_w, k=n_new)
    stamps = sorted(day_start + h * 3_600_000 + rng.randrange(3_600_000) for h in hours)
    texts = tg.messages(rng, n_new)
    media_at = set(rng.sample(range(n_new), min(n_media, n_new)))
    namer = MediaNamer(d)
    new_media = {"files": 0, "bytes": 0}
    fwd = {"files": 0, "bytes": 0}
    media_rows = con.execute("SELECT id, path, mime, size, sha256 FROM media "
                             "ORDER BY id").fetchall()
    cats = list(DAY_MEDIA_COUNT_WEIGHTS)
    cat_w = [DAY_MEDIA_COUNT_WEIGHTS[c] for c in cats]
    cat_of_mime = {"image/jpeg": "images", "video/mp4": "video"}
    my_new = []
    i = 0
    next_media_id = (con.execute("SELECT max(id) FROM media").fetchone()[0] or 0) + 1
    while i < n_new:
        burst = min(n_new - i, rng.randint(1, 40))
        cid = rng.choices(active, weights=weights)[0]
        batch = []
        for j in range(i, i + burst):
            fm = 1 if rng.random() < (0.15 if group[cid] else 0.45) else 0
            text, mid = texts[j], None
            if j in media_at:
                frng = sub_rng(seed, "day", a.day, "media", j)
                if media_rows and frng.random() < FORWARD_FRACTION:
                    src = frng.choice(media_rows)
                    src_abs = os.path.join(d, src[1])
                    if os.path.exists(src_abs):
                        cat = src[1].split("/")[1]
                        ext = src[1].rsplit(".", 1)[-1]
                        rel = namer.relpath(cat, ext, stamps[j], True, frng, tg)
                        os.makedirs(os.path.dirname(os.path.join(d, rel)), exist_ok=True)
                        shutil.copyfile(src_abs, os.path.join(d, rel))
                        size, sha, mime = src[3], src[4], src[2]
                        fm = 1
                        fwd["files"] += 1
                        fwd["bytes"] += size
                        rel_new = (rel, mime, size, sha)
                    else:
                        rel_new = None
                else:
                    rel_new = None
                if rel_new is None:
                    cat = frng.choices(cats, weights=cat_w)[0]
                    ext, mime = media_ext_mime(cat, frng)
                    rel = namer.relpath(cat, ext, stamps[j], fm == 1 and frng.random() < 0.3,
                                        frng, tg)
                    size, sha = write_media_file(os.path.join(d, rel), cat, ext,
                                                 lognorm_size(frng, *MEDIA_SIZE[cat]),
                                                 frng, tg)
                    rel_new = (rel, mime, size, sha)
                rel, mime, size, sha = rel_new
                secs = stamps[j] // 1000
                os.utime(os.path.join(d, rel), (secs, secs))
                new_media["files"] += 1
                new_media["bytes"] += size
                mid = next_media_id
                next_media_id += 1
                batch.append(("media", (mid, rel, mime, size, sha)))
                cat = rel.split("/")[1]
                if cat == "documents":
                    text = os.path.basename(rel)
                elif cat == "voice" or rng.random() < 0.75:
                    text = None
            status = 4 if fm else 0
            batch.append(("msg", (cid, fm, stamps[j], text, status, mid)))

        def do_burst(batch=batch, cid=cid):
            last = None
            for kind, row in batch:
                if kind == "media":
                    con.execute("INSERT INTO media VALUES (?,?,?,?,?)", row)
                else:
                    cur = con.execute("INSERT INTO message(chat_id, from_me, timestamp, "
                                      "text, status, media_id) VALUES (?,?,?,?,?,?)", row)
                    last = cur.lastrowid
                    if row[1]:
                        my_new.append(last)
            con.execute("UPDATE chat SET last_message_id = ? WHERE id = ?", (last, cid))
        txn(do_burst)
        i += burst

    # --- delivery/read receipts for my new messages
    acks = [(13 if rng.random() < 0.85 else 5, m) for m in my_new if rng.random() < 0.95]
    for k in range(0, len(acks), 50):
        part = acks[k:k + 50]
        txn(lambda part=part: con.executemany(
            "UPDATE message SET status = ? WHERE id = ?", part))

    # --- edits and deletes spread over the whole history
    taken = set()
    edit_ids = pick_existing(con, rng, lo, hi, "text IS NOT NULL AND media_id IS NULL",
                             n_edit, taken)
    new_texts = tg.messages(rng, len(edit_ids))
    k = 0
    while k < len(edit_ids):
        step = rng.randint(1, 8)
        part = list(zip(new_texts[k:k + step], edit_ids[k:k + step]))
        txn(lambda part=part: con.executemany(
            "UPDATE message SET text = ? WHERE id = ?", part))
        k += step
    del_ids = pick_existing(con, rng, lo, hi, "media_id IS NULL", n_del, taken)
    k = 0
    while k < len(del_ids):
        step = rng.randint(1, 8)
        part = [(x,) for x in del_ids[k:k + step]]
        txn(lambda part=part: con.executemany("DELETE FROM message WHERE id = ?", part))
        k += step

    # --- deleted media (file + media row + its message)
    gone = {"files": 0, "bytes": 0}
    cands = con.execute("SELECT id, path, size FROM media ORDER BY id").fetchall()
    for mid, rel, size in rng.sample(cands, min(n_mdel, len(cands))):
        def do_del(mid=mid):
            con.execute("DELETE FROM message WHERE media_id = ?", (mid,))
            con.execute("DELETE FROM media WHERE id = ?", (mid,))
        txn(do_del)
        p = os.path.join(d, rel)
        if os.path.exists(p):
            os.remove(p)
            gone["files"] += 1
            gone["bytes"] += size
    con.close()
    after = page_hashes(db_path, ps)

    # --- contacts: a few status changes, maybe a new contact (WAL db)
    wcon = sqlite3.connect(wa_path, isolation_level=None)
    n_contacts = wcon.execute("SELECT max(_id) FROM wa_contacts").fetchone()[0] or 0
    wcon.execute("BEGIN")
    for _ in range(rng.randint(2, 10)):
        wcon.execute("UPDATE wa_contacts SET status = ?, status_timestamp = ? WHERE _id = ?",
                     (tg.phrase(rng, 1, 8, cap=False), day_start + rng.randrange(DAY_S * 1000),
                      rng.randint(1, max(1, n_contacts))))
    new_contacts = 0
    if rng.random() < 0.5:
        j = "49%010d@s.whatsapp.net" % rng.randrange(10 ** 10)
        given, family = tg.phrase(rng, 1, 1), tg.phrase(rng, 1, 1)
        cur = wcon.execute("INSERT OR IGNORE INTO wa_contacts(jid, is_whatsapp_user, number, "
                           "display_name, given_name, family_name) VALUES (?,?,?,?,?,?)",
                           (j, 1, "+" + j.split("@")[0], given + " " + family, given, family))
        new_contacts = cur.rowcount
    wcon.execute("COMMIT")
    wcon.close()

    media_files, media_bytes = dir_bytes(os.path.join(d, "media"))
    summary = {
        "day": a.day,
        "seed": seed,
        "scale": scale,
        "new_messages": n_new,
        "edited_messages": len(edit_ids),
        "deleted_messages": len(del_ids),
        "new_media": new_media,
        "forwarded_copies": fwd,
        "deleted_media": gone,
        "new_contacts": new_contacts,
        "transactions": txns,
        "msgstore": {"bytes": os.path.getsize(db_path), "page_size": ps,
                     "pages": len(after), "pages_changed": pages_changed(before, after)},
        "media_files": media_files,
        "media_bytes": media_bytes,
    }
    info.setdefault("days_applied", []).append(
        {k: summary[k] for k in ("day", "new_messages", "edited_messages",
                                 "deleted_messages", "new_media", "deleted_media")})
    info["media_files"], info["media_bytes"] = media_files, media_bytes
    info["databases"] = {"msgstore.db": os.path.getsize(db_path),
                         "wa.db": os.path.getsize(wa_path)}
    write_json(os.path.join(d, ".corpus.json"), info)
    summary["seconds"] = round(time.time() - t0, 2)
    print(json.dumps(summary, indent=2, sort_keys=True))


# --------------------------------------------------------------------------- #
# sqlite-churn

def _rot(s, k):
    """Same-UTF-8-length mutation: rotate ASCII letters by k and digits by k."""
    out = []
    changed = False
    for ch in s:
        o = ord(ch)
        if 97 <= o <= 122:
            out.append(chr(97 + (o - 97 + k) % 26))
            changed = True
        elif 65 <= o <= 90:
            out.append(chr(65 + (o - 65 + k) % 26))
            changed = True
        elif 48 <= o <= 57:
            out.append(chr(48 + (o - 48 + k) % 10))
            changed = True
        else:
            out.append(ch)
    return "".join(out) if changed else None


def find_text_target(con, table, column):
    """(table, column) to churn: --table/--column if given, else message.text if
    present, else the text column (not covered by an index) holding the most
    text in the table with the most rows."""
    tables = [r[0] for r in con.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
    if table and table not in tables:
        raise SystemExit(f"no table {table!r}")
    if table is None and "message" in tables and column in (None, "text"):
        cols = [c[1] for c in con.execute('PRAGMA table_info("message")')]
        if "text" in cols:
            return "message", "text"
    best = None
    for t in ([table] if table else tables):
        try:
            cols = con.execute(f'PRAGMA table_info("{t}")').fetchall()
            n = con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
            con.execute(f'SELECT rowid FROM "{t}" LIMIT 1').fetchone()
        except sqlite3.Error:
            continue            # WITHOUT ROWID or virtual table
        if column:
            if column in [c[1] for c in cols]:
                return t, column
            continue
        indexed = set()
        for ix in con.execute(f'PRAGMA index_list("{t}")').fetchall():
            indexed.update(r[2] for r in con.execute(f'PRAGMA index_info("{ix[1]}")'))
        texty = [c[1] for c in cols if c[1] not in indexed and c[5] == 0
                 and any(k in c[2].upper() for k in ("CHAR", "TEXT", "CLOB"))]
        for c in texty:
            vol = con.execute(f'SELECT sum(length("{c}")) FROM (SELECT "{c}" FROM "{t}" '
                              f"WHERE typeof(\"{c}\") = 'text' LIMIT 2000)").fetchone()[0] or 0
            key = (n, vol)
            if vol and (best is None or key > best[2]):
                best = (t, c, key)
    if best is None:
        raise SystemExit("no suitable text column found (use --table/--column)")
    return best[0], best[1]


def cmd_sqlite_churn(a):
    t0 = time.time()
    path = a.db
    if not os.path.exists(path):
        raise SystemExit(f"{path} not found")
    if not 0 < a.fraction <= 1:
        raise SystemExit("--fraction must be in (0, 1]")
    ps = sqlite_page_size(path)
    before = page_hashes(path, ps)
    target = max(1, int(round(a.fraction * len(before))))
    con = sqlite3.connect(path, isolation_level=None)
    table, col = find_text_target(con, a.table, a.column)
    lo, hi = con.execute(f'SELECT min(rowid), max(rowid) FROM "{table}"').fetchone()
    if lo is None:
        raise SystemExit(f"table {table} is empty")
    rng = sub_rng(a.seed, "churn", a.fraction)
    q = (f'SELECT rowid, "{col}" FROM "{table}" WHERE rowid >= ? AND typeof("{col}") = '
         f"'text' ORDER BY rowid LIMIT 1")
    upd = f'UPDATE "{table}" SET "{col}" = ? WHERE rowid = ?'
    changed, updated, rounds = 0, 0, 0
    need = target
    touched = set()
    while rounds < 8 and need > 0:
        rounds += 1
        span = (hi - lo + 1) / need
        rows = []
        for s in range(need):
            start = lo + int(s * span) + rng.randrange(max(1, int(span)))
            r = con.execute(q, (start,)).fetchone()
            if r is None or r[0] in touched:
                continue
            new = _rot(r[1], rng.randint(1, 25)) if r[1] else None
            if new is None:
                continue
            touched.add(r[0])
            rows.append((new, r[0]))
        if not rows:
            break
        con.execute("BEGIN IMMEDIATE")
        con.executemany(upd, rows)
        con.execute("COMMIT")
        updated += len(rows)
        con.close()
        after = page_hashes(path, ps)
        changed = pages_changed(before, after)
        con = sqlite3.connect(path, isolation_level=None)
        if changed >= target * 0.97:
            break
        need = target - changed
    con.close()
    result = {
        "db": path,
        "page_size": ps,
        "pages_total": len(before),
        "fraction_requested": a.fraction,
        "target_pages": target,
        "pages_changed": changed,
        "fraction_changed": round(changed / max(1, len(before)), 5),
        "bytes_changed": changed * ps,
        "rows_updated": updated,
        "table": table,
        "column": col,
        "rounds": rounds,
        "seconds": round(time.time() - t0, 2),
    }
    print(json.dumps(result, indent=2, sort_keys=True))


# --------------------------------------------------------------------------- #
# mixed

LICENSE_TEXT = (
    "Licensed under the Apache License, Version 2.0 (the \"License\");\n"
    "you may not use this file except in compliance with the License.\n"
    "You may obtain a copy of the License at\n\n"
    "    http://www.apache.org/licenses/LICENSE-2.0\n\n"
    "Unless required by applicable law or agreed to in writing, software\n"
    "distributed under the License is distributed on an \"AS IS\" BASIS,\n"
    "WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.\n"
    "See the License for the specific language governing permissions and\n"
    "limitations under the License.\n") * 4


def code_text(rng, tg, lang, nbytes):
    W = lambda: tg.words_k(rng, 1)[0]
    ident = lambda: "_".join(tg.words_k(rng, rng.randint(1, 3)))
    typ = lambda: "".join(w.title() for w in tg.words_k(rng, rng.randint(1, 2)))
    if lang == "json":
        return json_text(rng, tg, nbytes)
    lines, size, depth = [], 0, 0
    if lang == "toml":
        lines.append('[package]\nname = "%s"\nversion = "%d.%d.%d"\n\n'
                     % (ident(), rng.randint(0, 3), rng.randint(0, 40), rng.randint(0, 20)))
    elif lang == "rs":
        lines.append("//! %s\n\nuse std::collections::HashMap;\nuse crate::%s::%s;\n\n"
                     % (tg.phrase(rng, 4, 12, cap=False), ident(), typ()))
    elif lang == "py":
        lines.append('"""%s."""\n\nimport os\nimport %s\n\n' % (tg.phrase(rng, 4, 12, cap=False), W()))
    elif lang == "js":
        lines.append("'use strict';\n// %s\nconst %s = require('./%s');\n\n"
                     % (tg.phrase(rng, 4, 12, cap=False), ident(), W()))
    elif lang == "md":
        lines.append("# %s\n\n" % tg.phrase(rng, 2, 5))
    size = len(lines[0])
    while size < nbytes:
        x = rng.random()
        ind = "    " * depth
        if lang == "md":
            if x < 0.15:
                ln = "\n## %s\n\n" % tg.phrase(rng, 1, 5)
            elif x < 0.3:
                ln = "- %s\n" % tg.phrase(rng, 3, 12, cap=False)
            elif x < 0.35:
                ln = "\n```\n%s --%s %d\n```\n\n" % (W(), W(), rng.randint(1, 999))
            else:
                ln = tg.phrase(rng, 6, 18, cap=False).capitalize() + ".\n"
        elif lang == "toml":
            ln = '%s = "%s"\n' % (ident(), W()) if x < 0.7 else "\n[%s]\n" % ident()
        elif (x < 0.08 and depth < 3) or (depth == 0 and lang in ("rs", "py", "js")):
            if lang == "rs":
                ln = "%spub fn %s(%s: &%s, %s: u%d) -> Result<%s> {\n" % (
                    ind, ident(), W(), typ(), W(), rng.choice((8, 16, 32, 64)), typ())
            elif lang == "py":
                ln = "%sdef %s(%s, %s=%d):\n" % (ind, ident(), W(), W(), rng.randint(0, 99))
            else:
                ln = "%sfunction %s(%s, %s) {\n" % (ind, ident(), W(), W())
            depth += 1
        elif x < 0.14 and depth > 0:
            depth -= 1
            ln = "" if lang == "py" else "    " * depth + "}\n"
            ln += "\n"
        elif x < 0.26:
            c = "#" if lang == "py" else "//"
            ln = "%s%s %s\n" % (ind, c, tg.phrase(rng, 3, 14, cap=False))
        elif x < 0.34 and depth < 3:
            cond = "%s.%s(%d)" % (W(), ident(), rng.randint(0, 4096))
            if lang == "py":
                ln = "%sif %s:\n" % (ind, cond)
            else:
                ln = "%sif %s {\n" % (ind, cond)
            depth += 1
        else:
            if lang == "rs":
                ln = "%slet %s = %s::%s(&%s, %d)?;\n" % (ind, ident(), typ(), ident(), W(),
                                                       rng.randint(0, 65535))
            elif lang == "py":
                ln = "%s%s = self.%s(%s, %r)\n" % (ind, ident(), ident(), W(), W())
            else:
                ln = "%sconst %s = await %s.%s(%s, %d);\n" % (ind, ident(), W(), ident(),
                                                             W(), rng.randint(0, 999))
        lines.append(ln)
        size += len(ln)
    while depth > 0 and lang in ("rs", "js"):
        depth -= 1
        lines.append("    " * depth + "}\n")
    return "".join(lines).encode()


def csv_text(rng, tg, nbytes):
    cols = [tg.words_k(rng, 1)[0] for _ in range(rng.randint(4, 9))]
    kinds = [rng.choice((0, 0, 1, 2)) for _ in cols]
    parts = [",".join(["id", "date"] + cols) + "\n"]
    size, i = len(parts[0]), 0
    while size < nbytes:
        i += 1
        vals = [str(i), ms_date((END_TS - rng.randrange(HISTORY_DAYS * DAY_S)) * 1000, "%Y-%m-%d")]
        for kind in kinds:
            vals.append("%.2f" % rng.uniform(0, 10000) if kind == 0 else
                        str(rng.randint(0, 1000)) if kind == 1 else tg.words_k(rng, 1)[0])
        ln = ",".join(vals) + "\n"
        parts.append(ln)
        size += len(ln)
    return "".join(parts).encode()


def json_text(rng, tg, nbytes):
    items, size = [], 2
    while size < nbytes:
        it = {"id": rng.randrange(10 ** 9), "name": tg.phrase(rng, 1, 3),
              "tags": tg.words_k(rng, rng.randint(0, 4)),
              "score": round(rng.random() * 100, 3),
              "note": tg.phrase(rng, 0, 12, cap=False) if rng.random() < 0.5 else None}
        s = json.dumps(it)
        items.append(s)
        size += len(s) + 4
    return ("[\n  " + ",\n  ".join(items) + "\n]\n").encode()


def log_text(rng, tg, nbytes):
    parts, size = [], 0
    t = (END_TS - 30 * DAY_S) * 1000
    while size < nbytes:
        t += int(rng.expovariate(1 / 2000.0))
        ln = "%s.%03dZ %s [%s] %s: %s\n" % (
            ms_date(t, "%Y-%m-%dT%H:%M:%S"), t % 1000,
            rng.choices(("INFO", "DEBUG", "WARN", "ERROR"), weights=(60, 30, 8, 2))[0],
            "worker-%d" % rng.randint(1, 16), tg.words_k(rng, 1)[0],
            tg.phrase(rng, 2, 10, cap=False))
        parts.append(ln)
        size += len(ln)
    return "".join(parts).encode()


def cmd_mixed(a):
    t0 = time.time()
    if a.size_mb <= 0:
        raise SystemExit("--size-mb must be > 0")
    out = a.out
    prepare_out(out, a.force)
    seed = a.seed
    tg = TextGen(seed)
    rng = sub_rng(seed, "mixed")
    budget = int(a.size_mb * MB)
    stats = {}
    mtime_rng = sub_rng(seed, "mixed-mtimes")

    def put(rel, data, section):
        p = os.path.join(out, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        ts = END_TS - mtime_rng.randrange(HISTORY_DAYS * DAY_S)
        os.utime(p, (ts, ts))
        st = stats.setdefault(section, {"files": 0, "bytes": 0})
        st["files"] += 1
        st["bytes"] += len(data)

    # 1. source tree
    n_src = max(1000, min(5000, int(a.size_mb * 40)))
    n_proj = rng.randint(3, 6)
    projects = ["%s-%s" % tuple(tg.words_k(rng, 2)) for _ in range(n_proj)]
    main_lang = {p: rng.choice(("rs", "py", "js")) for p in projects}
    dirs = {p: ["src"] for p in projects}
    for p in projects:
        for _ in range(max(3, n_src // (10 * n_proj))):
            parent = rng.choice(dirs[p])
            dirs[p].append(parent + "/" + "_".join(tg.words_k(rng, rng.randint(1, 2))))
        dirs[p] += ["tests", "docs", "examples"]
    pw = [1.0 / (i + 1) for i in range(n_proj)]
    written, src_files = set(), []
    for p in projects:
        put("src/%s/LICENSE" % p, LICENSE_TEXT.encode(), "source")
        put("src/%s/README.md" % p, code_text(rng, tg, "md", rng.randint(2000, 12000)), "source")
        put("src/%s/%s" % (p, {"rs": "Cargo.toml", "py": "pyproject.toml",
                              "js": "package.toml"}[main_lang[p]]),
            code_text(rng, tg, "toml", rng.randint(300, 1500)), "source")
    for _ in range(n_src - 3 * n_proj):
        p = rng.choices(projects, weights=pw)[0]
        dd = rng.choice(dirs[p])
        lang = ("md" if dd == "docs" else
                rng.choices((main_lang[p], "md", "json", "toml"), weights=(85, 6, 5, 4))[0])
        ext = {"toml": "toml", "json": "json"}.get(lang, lang)
        while True:
            rel = "src/%s/%s/%s.%s" % (p, dd, "_".join(tg.words_k(rng, rng.randint(1, 2))), ext)
            if rel not in written:
                break
        written.add(rel)
        data = code_text(rng, tg, lang, lognorm_size(rng, 2500, 1.0, 60, 150_000))
        put(rel, data, "source")
        src_files.append((rel, data))
    # vendored byte-identical copies of a few files
    for rel, data in rng.sample(src_files, max(1, len(src_files) // 40)):
        put("src/vendor/" + rel[len("src/"):], data, "source_vendored_copies")

    used = sum(v["bytes"] for v in stats.values())
    rest = max(0, budget - used)
    doc_budget, db_budget, bin_budget = rest * 0.25, rest * 0.15, rest * 0.60

    # 2. medium documents
    got, n = 0, 0
    while doc_budget - got > 20_000:
        n += 1
        size = min(lognorm_size(rng, 300_000, 0.9, 30_000, 4_000_000), int(doc_budget - got))
        kind = rng.choices(("md", "csv", "json", "pdf", "log"), weights=(20, 20, 15, 30, 15))[0]
        if kind == "md":
            data, rel = tg.prose(rng, size), "documents/notes/%s-%d.md"
        elif kind == "csv":
            data, rel = csv_text(rng, tg, size), "documents/data/%s-%d.csv"
        elif kind == "json":
            data, rel = json_text(rng, tg, size), "documents/exports/%s-%d.json"
        elif kind == "pdf":
            data, rel = pdf_bytes(size, rng, tg), "documents/papers/%s-%d.pdf"
        else:
            data, rel = log_text(rng, tg, size), "documents/logs/%s-%d.log"
        put(rel % ("_".join(tg.words_k(rng, 2)), n), data, "documents")
        got += len(data)

    # 3. one SQLite db (~110 bytes/message incl. indexes)
    n_msgs = max(200, int(db_budget / 110))
    dbp = os.path.join(out, "data", "app.db")
    os.makedirs(os.path.dirname(dbp))
    con, _ = build_msgstore(dbp, "%s:mixed-db" % seed, tg, n_msgs, max(5, n_msgs // 5000))
    finish_msgstore(con)
    os.utime(dbp, (END_TS, END_TS))
    stats["sqlite"] = {"files": 1, "bytes": os.path.getsize(dbp), "messages": n_msgs}

    # 4. a few large incompressible binaries
    n_bin = rng.randint(3, 6)
    shares = [rng.uniform(0.5, 2.0) for _ in range(n_bin)]
    names = ["binaries/toolchain-%d.%d.%d.tar.gz", "binaries/installer-%d.%d.%d.zip",
             "binaries/disk-%d.%d.%d.img.zst", "binaries/recording-%d%d%d.mp4",
             "binaries/backup-%d%d%d.7z", "binaries/dataset-%d.%d.%d.bin"]
    for i in range(n_bin):
        size = int(bin_budget * shares[i] / sum(shares))
        if size <= 0:
            continue
        rel = names[i] % (rng.randint(0, 9), rng.randint(0, 30), rng.randint(0, 99))
        p = os.path.join(out, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        sz, _sha = write_random_file(p, b"", b"", size, sub_rng(seed, "mixed-bin", i))
        ts = END_TS - mtime_rng.randrange(HISTORY_DAYS * DAY_S)
        os.utime(p, (ts, ts))
        st = stats.setdefault("binaries", {"files": 0, "bytes": 0})
        st["files"] += 1
        st["bytes"] += sz

    files, total = dir_bytes(out)
    info = {"kind": "mixed", "corpus_version": CORPUS_VERSION, "seed": seed,
            "size_mb_requested": a.size_mb, "files": files, "total_bytes": total,
            "sections": stats}
    write_json(os.path.join(out, ".corpus.json"), info)
    info["seconds"] = round(time.time() - t0, 2)
    print(json.dumps(info, indent=2, sort_keys=True))


# --------------------------------------------------------------------------- #
# many small files

# (share of files, median bytes, lognormal sigma, min, max, header) per kind of small file.
SMALL_KINDS = {
    "thumbs": (0.50, 4_000, 0.6, 500, 32_000, b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"),
    "stickers": (0.15, 16_000, 0.5, 2_000, 100_000, b"RIFF\x00\x00\x00\x00WEBPVP8 "),
    "avatars": (0.15, 3_000, 0.4, 800, 12_000, b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"),
    "cache": (0.20, 800, 0.8, 100, 16_000, None),
}
SMALL_FANOUT = 256            # sub-folders per kind: 1 M files give about 1,000 per folder


def small_kind(i, seed):
    r = sub_rng(seed, "small-kind", i).random()
    for kind, spec in SMALL_KINDS.items():
        r -= spec[0]
        if r < 0:
            return kind
    return "cache"


def small_path(out, kind, i):
    sub = "%02x" % (hashlib.blake2b(b"%d" % i, digest_size=1).digest()[0] % SMALL_FANOUT)
    ext = {"thumbs": "jpg", "stickers": "webp", "avatars": "jpg", "cache": "json"}[kind]
    stem = {"thumbs": "thumb", "stickers": "sticker", "avatars": "avatar", "cache": "cache"}[kind]
    return os.path.join(out, kind, sub, "%s-%08d.%s" % (stem, i, ext))


def write_small(path, kind, rng, tg, version=0):
    _share, median, sigma, lo, hi, head = SMALL_KINDS[kind]
    size = lognorm_size(rng, median, sigma, lo, hi)
    if head is None:
        words = tg.words_k(rng, max(4, size // 7))
        data = json.dumps({"v": version, "id": rng.getrandbits(48),
                           "text": " ".join(words)}).encode()[:size]
    else:
        data = head + rng.randbytes(max(0, size - len(head)))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    return len(data)


def small_mtime(seed, i, day=0):
    return END_TS + day * DAY_S - sub_rng(seed, "small-mtime", i, day).randrange(HISTORY_DAYS * DAY_S)


def cmd_files(a):
    t0 = time.time()
    if a.count <= 0:
        raise SystemExit("--count must be > 0")
    out = a.out
    prepare_out(out, a.force)
    tg = TextGen(a.seed)
    for kind in SMALL_KINDS:
        for j in range(SMALL_FANOUT):
            os.makedirs(os.path.join(out, kind, "%02x" % j))
    rng = sub_rng(a.seed, "small-bytes")
    stats = {}
    for i in range(a.count):
        kind = small_kind(i, a.seed)
        path = small_path(out, kind, i)
        n = write_small(path, kind, rng, tg)
        ts = small_mtime(a.seed, i)
        os.utime(path, (ts, ts))
        st = stats.setdefault(kind, {"files": 0, "bytes": 0})
        st["files"] += 1
        st["bytes"] += n
    files, total = dir_bytes(out)
    info = {"kind": "files", "corpus_version": CORPUS_VERSION, "seed": a.seed,
            "count": a.count, "files": files, "total_bytes": total, "sections": stats,
            "next": a.count}
    write_json(os.path.join(out, ".corpus.json"), info)
    info["seconds"] = round(time.time() - t0, 2)
    print(json.dumps(info, indent=2, sort_keys=True))


def cmd_files_day(a):
    """About 1% of the files drawn: half deleted, the JSON caches among the rest rewritten;
    then 1% new files."""
    t0 = time.time()
    info = load_info(a.dir)
    if info.get("kind") != "files":
        raise SystemExit(f"{a.dir} was not made by `corpus.py files`")
    seed, count, nxt = info["seed"], info["count"], info["next"]
    tg = TextGen(seed)
    rng = sub_rng(seed, "small-day", a.day)
    existing = sorted(rng.sample(range(nxt), min(nxt, count // 100 + 1)))
    deleted = rewritten = 0
    for k, i in enumerate(existing):
        kind = small_kind(i, seed)
        path = small_path(a.dir, kind, i)
        if not os.path.exists(path):
            continue
        if k % 2 == 0:
            os.remove(path)
            deleted += 1
        elif kind == "cache":
            write_small(path, kind, rng, tg, version=a.day)
            ts = small_mtime(seed, i, a.day)
            os.utime(path, (ts, ts))
            rewritten += 1
    added = count // 100 + 1
    for i in range(nxt, nxt + added):
        kind = small_kind(i, seed)
        path = small_path(a.dir, kind, i)
        write_small(path, kind, rng, tg)
        ts = END_TS + a.day * DAY_S
        os.utime(path, (ts, ts))
    info["next"] = nxt + added
    files, total = dir_bytes(a.dir)
    info["files"], info["total_bytes"] = files, total
    write_json(os.path.join(a.dir, ".corpus.json"), info)
    out = {"day": a.day, "added": added, "deleted": deleted, "rewritten": rewritten,
           "files": files, "total_bytes": total, "seconds": round(time.time() - t0, 2)}
    print(json.dumps(out, indent=2, sort_keys=True))


# --------------------------------------------------------------------------- #

def generator(sp, name, help_text, fn):
    """A subcommand that writes a new folder: --out, --seed and --force."""
    p = sp.add_parser(name, help=help_text)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--force", action="store_true", help="replace a non-empty --out")
    p.set_defaults(fn=fn)
    return p


def main(argv=None):
    ap = argparse.ArgumentParser(prog="corpus.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sp = ap.add_subparsers(dest="cmd", required=True)

    g = generator(sp, "generate", "generate a chat-app data folder", cmd_generate)
    g.add_argument("--scale", type=float, default=1.0)

    d = sp.add_parser("day", help="apply one day of use to a generated folder")
    d.add_argument("--dir", required=True)
    d.add_argument("--day", type=int, required=True)
    d.add_argument("--seed", type=int, default=None, help="default: seed in .corpus.json")
    d.add_argument("--scale", type=float, default=None, help="default: scale in .corpus.json")
    d.set_defaults(fn=cmd_day)

    c = sp.add_parser("sqlite-churn", help="change ~fraction of a SQLite file's pages")
    c.add_argument("--db", required=True)
    c.add_argument("--fraction", type=float, default=0.01)
    c.add_argument("--seed", type=int, default=1)
    c.add_argument("--table", default=None, help="default: message, else largest text table")
    c.add_argument("--column", default=None, help="default: text, else first text column")
    c.set_defaults(fn=cmd_sqlite_churn)

    m = generator(sp, "mixed", "generate a mixed folder of about --size-mb MB", cmd_mixed)
    m.add_argument("--size-mb", type=float, required=True)

    f = generator(sp, "files", "generate --count small files (thumbnails, caches)", cmd_files)
    f.add_argument("--count", type=int, required=True)

    fd = sp.add_parser("files-day", help="apply one day of use to a `files` folder")
    fd.add_argument("--dir", required=True)
    fd.add_argument("--day", type=int, required=True)
    fd.set_defaults(fn=cmd_files_day)

    a = ap.parse_args(argv)
    a.fn(a)


if __name__ == "__main__":
    main()
