# Shared by the benchmark scripts; source it from the repository root. It builds the
# release binary (`$bin`, or takes `$MATSURI_BIN`), makes a scratch folder (`$data`), and
# on exit stops the server, drops the database it made, runs `bench_cleanup_extra` when
# the script defines one, and removes the folder.

# MATSURI_BIN runs a binary built before (to compare two builds) instead of building one.
if [ -n "${MATSURI_BIN:-}" ]; then
  bin=$MATSURI_BIN
else
  cargo build --release --quiet -p matsuri
  bin=${CARGO_TARGET_DIR:-target}/release/matsuri
fi
data=$(mktemp -d)
db_name=""

bench_cleanup() {
  [ -n "${server:-}" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  if [ -n "$db_name" ]; then
    psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db_name WITH (FORCE)" >/dev/null || true
  fi
  if declare -F bench_cleanup_extra >/dev/null; then bench_cleanup_extra; fi
  rm -rf "$data"
}
trap bench_cleanup EXIT

# fresh_database sqlite|postgres: sets `database_url` to a new SQLite file in `$data`, or to
# a new PostgreSQL database on the server at `$admin_url`.
fresh_database() {
  case "$1" in
    sqlite) database_url="sqlite://$data/matsuri.db" ;;
    postgres)
      db_name="matsuri_bench_$$"
      psql "$admin_url" -qc "CREATE DATABASE $db_name" >/dev/null
      database_url="${admin_url%/*}/$db_name${DATABASE_URL_QUERY:-}"
      ;;
    *) return 1 ;;
  esac
}

# start_server PORT [SERVE FLAGS...]: `matsuri serve` on `$database_url`, waited for until
# it answers. Registering thousands of users is set-up, not what is measured: cheap
# password hashes keep it to seconds, and nothing measured hashes a password.
start_server() {
  local port=$1
  shift
  export MATSURI_ADMIN_EMAIL=bench@matsuri.localhost MATSURI_ADMIN_PASSWORD=bench-password
  export MATSURI_AUTH__ARGON2_MEMORY_KIB=64 MATSURI_AUTH__ARGON2_ITERATIONS=1
  export MATSURI_LOG__FILTER=warn
  "$bin" serve --bind "127.0.0.1:$port" --data-dir "$data" --database-url "$database_url" "$@" &
  server=$!
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
    sleep 0.2
  done
}
