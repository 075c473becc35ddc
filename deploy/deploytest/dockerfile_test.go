package deploytest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	json "github.com/go-json-experiment/json/v1"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line int
	cmd  string // upper case
	args string
}

type stage struct {
	name, base string
	ins        []instruction
}

func parseDockerfile(t *testing.T, path string) (global []instruction, stages []*stage) {
	t.Helper()
	lines := strings.Split(string(readFile(t, path)), "\n")
	for i := 0; i < len(lines); i++ {
		start := i + 1
		text := strings.TrimSpace(lines[i])
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		for strings.HasSuffix(text, `\`) && i+1 < len(lines) {
			i++
			next := strings.TrimSpace(lines[i])
			if strings.HasPrefix(next, "#") {
				continue
			}
			text = strings.TrimSuffix(text, `\`) + " " + next
		}
		cmd, args, _ := strings.Cut(text, " ")
		in := instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			st := &stage{base: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			global = append(global, in)
		} else {
			stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
		}
	}
	return global, stages
}

func (s *stage) find(cmd string) []instruction {
	var out []instruction
	for _, in := range s.ins {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

func execForm(t *testing.T, in instruction) []string {
	t.Helper()
	var l []string
	if err := json.Unmarshal([]byte(in.args), &l); err != nil {
		t.Errorf("Dockerfile:%d: %s %s: want the exec (JSON) form: distroless has no shell", in.line, in.cmd, in.args)
	}
	return l
}

func TestDockerfile(t *testing.T) {
	root := repoRoot(t)
	global, stages := parseDockerfile(t, filepath.Join(root, "deploy", "Dockerfile"))
	byName := map[string]*stage{}
	for _, s := range stages {
		if s.name != "" {
			byName[s.name] = s
		}
	}

	hasDefault := false
	for _, in := range global {
		if in.cmd == "ARG" && strings.HasPrefix(in.args, "SERVICE=") && len(in.args) > len("SERVICE=") {
			hasDefault = true
		}
	}
	if !hasDefault {
		t.Error("Dockerfile: want a global ARG SERVICE=<default> before the first FROM (the final FROM is chosen by it)")
	}
	final := stages[len(stages)-1]
	if final.base != "svc-${SERVICE}" {
		t.Errorf("Dockerfile: final stage FROM %q, want svc-${SERVICE}", final.base)
	}

	build := byName["build"]
	if build == nil {
		t.Fatal("Dockerfile: no build stage")
	}
	var download, copyAll, goBuild int
	for i, in := range build.ins {
		switch {
		case in.cmd == "RUN" && strings.Contains(in.args, "go mod download"):
			download = i + 1
		case in.cmd == "COPY" && strings.HasPrefix(in.args, ". "):
			copyAll = i + 1
		case in.cmd == "RUN" && strings.Contains(in.args, "go build"):
			goBuild = i + 1
			for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags="-s -w"`, "./cmd/${SERVICE}"} {
				if !strings.Contains(in.args, want) {
					t.Errorf("Dockerfile:%d: go build without %s", in.line, want)
				}
			}
		}
	}
	if download == 0 || copyAll == 0 || goBuild == 0 || !(download < copyAll && copyAll < goBuild) {
		t.Error("Dockerfile: want `go mod download` in its own layer, before `COPY . .`, before `go build`")
	}

	runtime := byName["runtime"]
	if runtime == nil {
		t.Fatal("Dockerfile: no runtime stage")
	}
	if runtime.base != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("Dockerfile: runtime base %q, want gcr.io/distroless/static-debian12:nonroot", runtime.base)
	}
	users := runtime.find("USER")
	if len(users) == 0 || !strings.HasPrefix(users[len(users)-1].args, "65532") {
		t.Error("Dockerfile: runtime must run as USER 65532")
	}
	var httpPort string
	for _, in := range runtime.find("ENV") {
		if m := regexp.MustCompile(`ITSM_HTTP_ADDR=\S*:(\d+)`).FindStringSubmatch(in.args); m != nil {
			httpPort = m[1]
		}
	}
	exposed := runtime.find("EXPOSE")
	if httpPort == "" || len(exposed) == 0 || exposed[0].args != httpPort {
		t.Errorf("Dockerfile: EXPOSE %v must match the ITSM_HTTP_ADDR port %q set in the image", exposed, httpPort)
	}

	// One service stage per binary in ./cmd, and none for a missing one.
	cmds, err := os.ReadDir(filepath.Join(root, "cmd"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range cmds {
		if d.IsDir() && byName["svc-"+d.Name()] == nil {
			t.Errorf("Dockerfile: no stage svc-%s for ./cmd/%s", d.Name(), d.Name())
		}
	}
	for name, s := range byName {
		bin, ok := strings.CutPrefix(name, "svc-")
		if !ok {
			continue
		}
		if st, err := os.Stat(filepath.Join(root, "cmd", bin)); err != nil || !st.IsDir() {
			t.Errorf("Dockerfile: stage %s has no ./cmd/%s", name, bin)
		}
		if s.base != "runtime" {
			t.Errorf("Dockerfile: stage %s must build on runtime, not %s", name, s.base)
		}
		eps := s.find("ENTRYPOINT")
		if len(eps) != 1 {
			t.Errorf("Dockerfile: stage %s: want one ENTRYPOINT", name)
			continue
		}
		if ep := execForm(t, eps[0]); len(ep) != 1 || ep[0] != "/app/"+bin {
			t.Errorf("Dockerfile: stage %s: ENTRYPOINT %v, want [/app/%s]", name, ep, bin)
		}
		cmd := s.find("CMD")
		if bin == "itsm" {
			if len(cmd) != 1 || strings.Join(execForm(t, cmd[0]), " ") != "run" {
				t.Errorf("Dockerfile: stage svc-itsm: want CMD [\"run\"]")
			}
		}
	}

	ignore := strings.Fields(string(readFile(t, filepath.Join(root, ".dockerignore"))))
	for _, want := range []string{".git", ".env", "data", "bin"} {
		found := false
		for _, p := range ignore {
			if strings.Trim(p, "/") == want {
				found = true
			}
		}
		if !found {
			t.Errorf(".dockerignore: %s is not excluded from the build context", want)
		}
	}
}
