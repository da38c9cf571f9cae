#!/usr/bin/env bash
# The vault API fuzzed through its own OpenAPI document (issue 7), with schemathesis (PyPI).
#
#   campaigns/vault_api.sh                      # 100 examples per operation and pass, seed 7
#   VAULT_API_EXAMPLES=1000 VAULT_API_SEED=42 campaigns/vault_api.sh
#
# It starts a real `arca-vault serve` (a temporary folder, a SQLite database, the cheap test
# Argon2id floor, an HS256 issuer, rate limits off), registers the account `fuzz` with a known
# guess budget (over HTTP, with arca-client: the `vault_account` example), and runs schemathesis
# against http://127.0.0.1:PORT/v1/openapi.json with every check, in three passes:
#
#   1. `fuzz`:    the account routes for the registered account with its own token (every
#                 operation except DELETE, which would end the experiment);
#   2. `scratch`: every operation, DELETE included, for a second account with its own token;
#   3. `anyone`:  every operation with generated account ids and `fuzz`'s token (the guard:
#                 another account's id, malformed ids, missing or broken tokens).
#
# Then it checks what schemathesis cannot see:
#   - the guesses `fuzz` lost equal the login starts the server answered 200 for it (read from
#     the server's JSON request log): no malformed request was charged a guess;
#   - `fuzz` still logs in with its password and recovers the same key, which resets its count;
#   - the server is alive, answered no 5xx and logged no panic.
# Exit status 0 only if schemathesis found nothing and every check above holds.
set -euo pipefail
cd "$(dirname "$0")/.."

EXAMPLES=${VAULT_API_EXAMPLES:-100}
SEED=${VAULT_API_SEED:-7}
LIMIT=20         # the guess budget of `fuzz` (the vault's default max_guess_limit)
PASSWORD='correct horse battery staple'

log() { printf '\n== %s\n' "$*"; }
fail() { printf 'vault_api.sh: FAILED: %s\n' "$*" >&2; exit 1; }

if ! command -v schemathesis >/dev/null 2>&1; then
  log "installing schemathesis"
  python3 -m pip install -q schemathesis \
    || python3 -m pip install -q --break-system-packages schemathesis
  command -v pyenv >/dev/null 2>&1 && pyenv rehash
  PATH="$PATH:$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
fi
log "schemathesis $(schemathesis --version | awk '{print $NF}'), $EXAMPLES examples per operation and pass, seed $SEED"

log "building arca-vault and the vault_account example"
cargo build -q -p arca-vault --bin arca-vault --example vault_account
TARGET=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
VAULT=$TARGET/debug/arca-vault
ACCOUNT_TOOL=$TARGET/debug/examples/vault_account

WORK=$(mktemp -d /tmp/arca-vault-api.XXXXXX)
SERVER_PID=
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
  [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

cat >"$WORK/vault.toml" <<EOF
master_key_file = "master.key"
create_master_key = true

[[issuer]]
name = "arca-fuzz"
hs256_secret = "fuzz campaign secret 0123456789abcdef0123456789"

[policy]
ksf_floor = { m_kib = 64, t = 1, p = 1 }
insecure_test_ksf = true

[rate_limit]
per_account_per_minute = 0
per_address_per_minute = 0
EOF

ARCA_VAULT_LOG=info "$VAULT" serve --listen 127.0.0.1:0 --database "$WORK/vault.db" \
  --config "$WORK/vault.toml" --log-format json >"$WORK/stdout" 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 1 100); do
  grep -q '^listening on ' "$WORK/stdout" 2>/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; fail "the vault did not start"; }
  sleep 0.1
done
URL=$(sed -n 's/^listening on //p' "$WORK/stdout" | head -n 1)
[ -n "$URL" ] || fail "the vault printed no URL"
log "arca-vault serving at $URL (log: $WORK/server.log)"

token() { "$VAULT" token issue --account "$1" --ttl 2h --config "$WORK/vault.toml"; }
FUZZ_TOKEN=$(token fuzz)
SCRATCH_TOKEN=$(token scratch)

read -r KEY_DIGEST LEFT < <(ARCA_VAULT_TOKEN=$FUZZ_TOKEN "$ACCOUNT_TOOL" register "$URL" fuzz "$PASSWORD" "$LIMIT")
[ "$LEFT" = "$LIMIT" ] || fail "registered with $LEFT guesses, not $LIMIT"
log "registered account fuzz with $LIMIT guesses"

# Settings shared by the passes (the account is fixed per pass below).
# - positive_data_acceptance also accepts 400: a JSON schema can say "base64url", not "a valid
#   ristretto255 point" or "an OPAQUE message that verifies", so a schema-valid body may still
#   be a malformed protocol message (400, nothing charged). 410 is the answer for a destroyed
#   record and 409 for an unknown login id.
cat >"$WORK/common.toml" <<'EOF'
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "400", "401", "403", "404", "409", "410"]
EOF

run_pass() {
  local name=$1 token=$2 account=$3
  shift 3
  local cfg="$WORK/$name.toml"
  cp "$WORK/common.toml" "$cfg"
  if [ -n "$account" ]; then
    printf '\n[parameters]\n"path.account" = "%s"\n' "$account" >>"$cfg"
  fi
  log "pass $name"
  set +e
  # from the work folder, so schemathesis's cache folder lands there
  (cd "$WORK" && schemathesis --config-file "$cfg" run "$URL/v1/openapi.json" \
    --checks all --max-examples "$EXAMPLES" --seed "$SEED" --workers 1 \
    --generation-database none --no-color --request-timeout 30 --suppress-health-check filter_too_much \
    -H "Authorization: Bearer $token" \
    --report ndjson --report-ndjson-path "$WORK/$name.ndjson" "$@") 2>&1 | tee "$WORK/$name.out"
  local rc=${PIPESTATUS[0]}
  set -e
  echo "pass $name: schemathesis exit status $rc"
  return "$rc"
}

STATUS=0
run_pass fuzz "$FUZZ_TOKEN" fuzz --exclude-method DELETE || STATUS=1
run_pass scratch "$SCRATCH_TOKEN" scratch || STATUS=1
run_pass anyone "$FUZZ_TOKEN" "" || STATUS=1

log "checks beyond schemathesis"
kill -0 "$SERVER_PID" 2>/dev/null || fail "the vault died during the run"
python3 - "$WORK" "$URL" "$FUZZ_TOKEN" "$LIMIT" <<'PY' || STATUS=1
import json, sys, urllib.request
work, url, token, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
requests, statuses, answered_starts, panics = 0, {}, 0, []
with open(f"{work}/server.log") as f:
    for line in f:
        if "panicked" in line:
            panics.append(line.strip())
        try:
            e = json.loads(line)
        except ValueError:
            continue
        fields = e.get("fields", {})
        if fields.get("message") != "request":
            continue
        requests += 1
        status = int(fields["status"])
        statuses[status] = statuses.get(status, 0) + 1
        if fields["path"] == "/v1/accounts/fuzz/login/start" and fields["method"] == "POST" and status == 200:
            answered_starts += 1
req = urllib.request.Request(f"{url}/v1/accounts/fuzz", headers={"Authorization": f"Bearer {token}"})
account = json.load(urllib.request.urlopen(req))
left = account["guesses_left"]
print(f"server: {requests} requests, statuses {dict(sorted(statuses.items()))}")
print(f"fuzz: {limit - left} guesses charged, {answered_starts} login starts answered 200")
ok = True
if panics:
    print("PANIC in the server log:\n" + "\n".join(panics)); ok = False
if any(s >= 500 for s in statuses):
    print("the server answered 5xx"); ok = False
if not account["registered"] or limit - left != answered_starts:
    print(f"guess count mismatch: {account}"); ok = False
sys.exit(0 if ok else 1)
PY
read -r DIGEST_AFTER LEFT_AFTER < <(ARCA_VAULT_TOKEN=$FUZZ_TOKEN "$ACCOUNT_TOOL" login "$URL" fuzz "$PASSWORD") \
  || fail "fuzz no longer logs in"
[ "$DIGEST_AFTER" = "$KEY_DIGEST" ] || fail "fuzz recovered another key"
[ "$LEFT_AFTER" = "$LIMIT" ] || fail "a correct login left $LEFT_AFTER guesses, not $LIMIT"
echo "fuzz logs in with its password, recovers its key, and is back at $LIMIT guesses"

python3 - "$WORK" <<'PY'
import json, sys, glob
ops, cases, failures = set(), 0, 0
for path in glob.glob(f"{sys.argv[1]}/*.ndjson"):
    with open(path) as f:
        for line in f:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            for kind, body in e.items():
                if kind == "ScenarioFinished":
                    rec = body.get("recorder", {})
                    label = rec.get("label")
                    if label:
                        ops.add(label)
                    cases += len(rec.get("cases", {}))
                    for checks in rec.get("checks", {}).values():
                        failures += sum(1 for c in checks if c.get("status") == "FAILURE")
print(f"schemathesis: {len(ops)} operations, {cases} test cases over the passes, {failures} failed checks")
PY
[ "$STATUS" = 0 ] || fail "see above (work folder kept with KEEP_WORK=1)"
log "vault API campaign passed"
