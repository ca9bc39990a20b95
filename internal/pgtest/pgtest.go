// Package pgtest starts a throw-away PostgreSQL server for tests: a new
// cluster made by Debian's postgresql package (initdb and pg_ctl from
// /usr/lib/postgresql/*/bin; scripts/setup.sh test installs it) in a
// temporary folder, listening on a Unix socket only, stopped and removed
// when the test ends.
package pgtest

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
)

// Start starts the server and returns a postgres:// URL of its "postgres"
// database. A machine without the package fails the test with what to run.
func Start(t testing.TB) string {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		t.Fatal("no PostgreSQL server here (/usr/lib/postgresql/*/bin/initdb): run scripts/setup.sh test, which installs Debian's postgresql")
	}
	sort.Strings(bins)
	bin := filepath.Dir(bins[len(bins)-1])
	// A short path: the socket's must fit in 107 bytes.
	dir, err := os.MkdirTemp("", "wipg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	data := filepath.Join(dir, "data")
	// initdb refuses to run as root: run the server as the package's
	// postgres user, who must own the folder.
	var asUser []string
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs the postgres user of Debian's postgresql package: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		asUser = []string{"runuser", "-u", "postgres", "--"}
	}
	run := func(name string, args ...string) {
		t.Helper()
		argv := append(append(asUser, filepath.Join(bin, name)), args...)
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
	}
	run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
	run("pg_ctl", "-D", data, "-l", filepath.Join(dir, "log"), "-w", "-t", "60",
		"-o", fmt.Sprintf("-c listen_addresses='' -k %s -p 5432", dir), "start")
	t.Cleanup(func() {
		argv := append(append(asUser, filepath.Join(bin, "pg_ctl")), "-D", data, "-m", "immediate", "stop")
		exec.Command(argv[0], argv[1:]...).Run()
	})
	return fmt.Sprintf("postgres://postgres@/postgres?host=%s&port=5432&sslmode=disable", dir)
}
