# Sourced by test.sh when no PostgreSQL answers on 127.0.0.1:5432: installs the server if needed and
# starts a throwaway cluster on 127.0.0.1:55432 (trust auth, fsync off), exporting its URL.
as_root=(); [ "$(id -u)" -eq 0 ] || as_root=(sudo)
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  "${as_root[@]}" apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
pgdir=$(mktemp -d /tmp/sandfleet-pg.XXXXXX)
chown postgres "$pgdir" 2>/dev/null || true
run_pg() { if [ "$(id -u)" -eq 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi; }
run_pg "$bin/initdb -D $pgdir/data -U postgres -A trust >/dev/null"
run_pg "$bin/pg_ctl -D $pgdir/data -l $pgdir/log -w -o '-p 55432 -k $pgdir -c listen_addresses=127.0.0.1 -c fsync=off' start >/dev/null"
run_pg "$bin/createdb -h 127.0.0.1 -p 55432 -U postgres test"
export SANDFLEET_TEST_PG_URL=postgres://postgres@127.0.0.1:55432/test
