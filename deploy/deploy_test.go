// Package deploy holds no code: its tests check the deploy kit (manifests,
// units, kernel settings, the dashboard) against the mako they deploy.
package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"mako/config"
)

// makoBin is a mako built from this tree for `mako check` and for
// systemd-analyze (which wants the unit's binaries to exist).
var makoBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mako-deploy")
	if err != nil {
		panic(err)
	}
	makoBin = filepath.Join(dir, "mako")
	build := exec.Command("go", "build", "-o", makoBin, "mako/cmd/mako")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		os.RemoveAll(dir)
		panic("go build mako: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// makoCheck runs `mako check -c path` and fails the test unless it exits 0.
func makoCheck(t *testing.T, path string) {
	t.Helper()
	out, err := exec.Command(makoBin, "check", "-c", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "config ok") {
		t.Errorf("mako check -c %s: %v\n%s", path, err, out)
	}
}

// k8sObject is the part of a Kubernetes object the checks read; yaml.v3
// ignores the rest.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		// Service: selector is a plain map; decoded separately.
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
		Ports []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort any    `yaml:"targetPort"`
		} `yaml:"ports"`
		MinAvailable   any `yaml:"minAvailable"`
		MaxUnavailable any `yaml:"maxUnavailable"`
		Endpoints      []struct {
			Port string `yaml:"port"`
			Path string `yaml:"path"`
		} `yaml:"endpoints"`
	} `yaml:"spec"`
	raw map[string]any
}

type podSpec struct {
	TerminationGracePeriodSeconds *int `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               struct {
		RunAsNonRoot *bool `yaml:"runAsNonRoot"`
		RunAsUser    *int  `yaml:"runAsUser"`
	} `yaml:"securityContext"`
	Containers []struct {
		Name  string   `yaml:"name"`
		Args  []string `yaml:"args"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		ReadinessProbe *probe `yaml:"readinessProbe"`
		LivenessProbe  *probe `yaml:"livenessProbe"`
		Lifecycle      struct {
			PreStop *struct {
				Sleep *struct {
					Seconds int `yaml:"seconds"`
				} `yaml:"sleep"`
				Exec *struct {
					Command []string `yaml:"command"`
				} `yaml:"exec"`
			} `yaml:"preStop"`
		} `yaml:"lifecycle"`
		Resources struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		SecurityContext struct {
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
			ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		} `yaml:"securityContext"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
	} `yaml:"containers"`
	Volumes []struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
	} `yaml:"volumes"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

// yamlDocs decodes every document of a multi-document YAML file, failing
// on a syntax error in any of them.
func yamlDocs(t *testing.T, path string) []k8sObject {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []k8sObject
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	generic := yaml.NewDecoder(bytes.NewReader(raw))
	for i := 0; ; i++ {
		var o k8sObject
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", path, i+1, err)
		}
		if err := generic.Decode(&o.raw); err != nil {
			t.Fatalf("%s: document %d: %v", path, i+1, err)
		}
		if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
			t.Errorf("%s: document %d: apiVersion %q kind %q name %q: want all set", path, i+1, o.APIVersion, o.Kind, o.Metadata.Name)
		}
		out = append(out, o)
	}
}

// Every YAML file of the kit parses; the mako configs among them pass
// `mako check`.
func TestYAMLParses(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob("*/*.yaml")
	files = append(files, more...)
	if len(files) < 5 {
		t.Fatalf("found %v: want the kit's YAML files", files)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		for {
			var v any
			if err := dec.Decode(&v); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Errorf("%s: %v", f, err)
				break
			}
		}
		if filepath.Dir(f) != "k8s" {
			makoCheck(t, f)
		}
	}
}

// The Kubernetes manifests: a Deployment whose probes, preStop, grace
// period, ports and mounts fit the ConfigMap's mako config, a Service, a
// PodDisruptionBudget and a ServiceMonitor that reach it.
func TestKubernetes(t *testing.T) {
	objs := yamlDocs(t, "k8s/mako.yaml")
	byKind := map[string]*k8sObject{}
	for i := range objs {
		if byKind[objs[i].Kind] != nil {
			t.Errorf("two %s objects", objs[i].Kind)
		}
		byKind[objs[i].Kind] = &objs[i]
	}
	for _, k := range []string{"ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "ServiceMonitor"} {
		if byKind[k] == nil {
			t.Fatalf("no %s in k8s/mako.yaml", k)
		}
	}
	if v := byKind["PodDisruptionBudget"].APIVersion; v != "policy/v1" {
		t.Errorf("PodDisruptionBudget apiVersion %q, want policy/v1", v)
	}
	if v := byKind["ServiceMonitor"].APIVersion; v != "monitoring.coreos.com/v1" {
		t.Errorf("ServiceMonitor apiVersion %q, want monitoring.coreos.com/v1", v)
	}

	// The ConfigMap's config is a valid mako config (`mako check`).
	cm := byKind["ConfigMap"]
	cfgText, ok := cm.Data["mako.yaml"]
	if !ok {
		t.Fatalf("ConfigMap: no mako.yaml key, has %v", cm.Data)
	}
	cfgPath := filepath.Join(t.TempDir(), "mako.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	makoCheck(t, cfgPath)
	cfg, err := config.Parse([]byte(cfgText), "ConfigMap mako.yaml")
	if err != nil {
		t.Fatalf("ConfigMap mako.yaml: %v", err)
	}
	if cfg.API == nil || cfg.Metrics.Prometheus == nil {
		t.Fatal("ConfigMap mako.yaml: want api (probes) and metrics.prometheus (ServiceMonitor) blocks")
	}
	if cfg.Redis == nil {
		t.Error("ConfigMap mako.yaml: several replicas need a redis block (the embedded broker is one node)")
	}

	dep := byKind["Deployment"]
	pod := dep.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("Deployment: %d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for name, want := range map[string]int{"ws": cfg.WS.Port, "api": cfg.API.Port, "metrics": cfg.Metrics.Prometheus.Port} {
		if ports[name] != want {
			t.Errorf("container port %s = %d, want %d from the config", name, ports[name], want)
		}
	}
	for _, h := range []string{cfg.WS.Host, cfg.API.Host, cfg.Metrics.Prometheus.Host} {
		if h != "0.0.0.0" && h != "" && h != "::" {
			t.Errorf("config listens on %q: probes and the Service cannot reach loopback", h)
		}
	}
	checkProbe := func(name string, p *probe, path string) {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s: want an httpGet probe on %s", name, path)
			return
		}
		if p.HTTPGet.Path != path || (p.HTTPGet.Port != "api" && p.HTTPGet.Port != cfg.API.Port) {
			t.Errorf("%s: %s on port %v, want %s on the api port", name, p.HTTPGet.Path, p.HTTPGet.Port, path)
		}
	}
	checkProbe("readinessProbe", c.ReadinessProbe, "/readyz")
	checkProbe("livenessProbe", c.LivenessProbe, "/healthz")

	// SIGTERM comes after preStop; the drain must then finish inside the
	// grace period, or Kubernetes kills mako mid-drain.
	pre := c.Lifecycle.PreStop
	if pre == nil || pre.Sleep == nil || pre.Sleep.Seconds <= 0 {
		t.Fatalf("preStop: %+v, want a sleep (the image has no shell for an exec hook)", pre)
	}
	if pre.Exec != nil {
		t.Error("preStop exec: the distroless image has no shell or sleep binary")
	}
	grace := pod.TerminationGracePeriodSeconds
	need := float64(pre.Sleep.Seconds) + float64(cfg.Limits.DrainTimeout)
	if grace == nil {
		t.Error("no terminationGracePeriodSeconds: the default 30s is not longer than the drain")
	} else if float64(*grace) <= need {
		t.Errorf("terminationGracePeriodSeconds %d, want more than preStop %ds + limits.drain_timeout %vs",
			*grace, pre.Sleep.Seconds, cfg.Limits.DrainTimeout)
	}

	sc := pod.SecurityContext
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		t.Errorf("pod securityContext %+v: want runAsNonRoot and a non-zero runAsUser", sc)
	}
	if p := c.SecurityContext.AllowPrivilegeEscalation; p == nil || *p {
		t.Error("container securityContext: want allowPrivilegeEscalation: false")
	}
	if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" {
		t.Errorf("resources %+v: want cpu and memory requests and a memory limit", c.Resources)
	}

	// The config file mako reads is the ConfigMap's key, mounted.
	if len(c.Args) != 2 || c.Args[0] != "-c" {
		t.Fatalf("args %v, want -c PATH", c.Args)
	}
	mounted := false
	for _, m := range c.VolumeMounts {
		for _, v := range pod.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil && v.ConfigMap.Name == cm.Metadata.Name &&
				c.Args[1] == filepath.Join(m.MountPath, "mako.yaml") {
				mounted = true
			}
		}
	}
	if !mounted {
		t.Errorf("-c %s is not the ConfigMap's mako.yaml mounted", c.Args[1])
	}

	// Selectors: the Deployment, Service, PDB and ServiceMonitor all reach
	// the pods (and the ServiceMonitor the Service).
	podLabels := dep.Spec.Template.Metadata.Labels
	matches := func(sel map[string]string, labels map[string]string) bool {
		if len(sel) == 0 {
			return false
		}
		for k, v := range sel {
			if labels[k] != v {
				return false
			}
		}
		return true
	}
	svc := byKind["Service"]
	svcSel := map[string]string{}
	if s, ok := svc.raw["spec"].(map[string]any)["selector"].(map[string]any); ok {
		for k, v := range s {
			svcSel[k], _ = v.(string)
		}
	}
	for name, sel := range map[string]map[string]string{
		"Deployment":          dep.Spec.Selector.MatchLabels,
		"Service":             svcSel,
		"PodDisruptionBudget": byKind["PodDisruptionBudget"].Spec.Selector.MatchLabels,
	} {
		if !matches(sel, podLabels) {
			t.Errorf("%s selector %v does not select the pods (%v)", name, sel, podLabels)
		}
	}
	pdb := byKind["PodDisruptionBudget"].Spec
	if (pdb.MinAvailable == nil) == (pdb.MaxUnavailable == nil) {
		t.Error("PodDisruptionBudget: want exactly one of minAvailable, maxUnavailable")
	}
	sm := byKind["ServiceMonitor"]
	if !matches(sm.Spec.Selector.MatchLabels, svc.Metadata.Labels) {
		t.Errorf("ServiceMonitor selector %v does not select the Service (labels %v)", sm.Spec.Selector.MatchLabels, svc.Metadata.Labels)
	}
	if len(sm.Spec.Endpoints) != 1 {
		t.Fatalf("ServiceMonitor: %d endpoints, want 1", len(sm.Spec.Endpoints))
	}
	ep := sm.Spec.Endpoints[0]
	if ep.Path != "/metrics" {
		t.Errorf("ServiceMonitor path %q, want /metrics", ep.Path)
	}
	scraped := 0
	for _, p := range svc.Spec.Ports {
		if p.Name == ep.Port {
			scraped = ports[p.TargetPort.(string)]
		}
	}
	if scraped != cfg.Metrics.Prometheus.Port {
		t.Errorf("ServiceMonitor port %q reaches container port %d, want metrics.prometheus.port %d", ep.Port, scraped, cfg.Metrics.Prometheus.Port)
	}
	for _, p := range svc.Spec.Ports {
		if name, ok := p.TargetPort.(string); !ok || ports[name] == 0 {
			t.Errorf("Service port %s: targetPort %v is no named container port", p.Name, p.TargetPort)
		}
	}
}

// The image runs as the distroless nonroot user with the container config,
// which listens on every interface at the ports the image exposes.
func TestContainer(t *testing.T) {
	raw, err := os.ReadFile("container/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var from, user, configDest string
	var expose []int
	var entry []string
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			from, user, expose = f[1], "", nil // each stage starts afresh
		case "USER":
			user = f[1]
		case "EXPOSE":
			for _, p := range f[1:] {
				n, _ := strconv.Atoi(p)
				expose = append(expose, n)
			}
		case "COPY":
			if strings.HasSuffix(f[len(f)-2], "mako.container.yaml") {
				configDest = f[len(f)-1]
			}
		case "ENTRYPOINT":
			entry = regexp.MustCompile(`"([^"]*)"`).FindAllString(line, -1)
			for i := range entry {
				entry[i] = strings.Trim(entry[i], `"`)
			}
		}
	}
	if !strings.HasSuffix(from, ":nonroot") {
		t.Errorf("final stage FROM %s: want a :nonroot distroless base", from)
	}
	// Numeric, so Kubernetes' runAsNonRoot can verify it without runAsUser.
	if uid, err := strconv.Atoi(strings.Split(user, ":")[0]); err != nil || uid == 0 {
		t.Errorf("final stage USER %q: want a numeric non-root uid", user)
	} else {
		for _, o := range yamlDocs(t, "k8s/mako.yaml") {
			if u := o.Spec.Template.Spec.SecurityContext.RunAsUser; o.Kind == "Deployment" && (u == nil || *u != uid) {
				t.Errorf("Deployment runAsUser %v, want the image's uid %d", u, uid)
			}
		}
	}
	if len(entry) != 3 || entry[1] != "-c" || entry[2] != configDest || configDest == "" {
		t.Errorf("ENTRYPOINT %v: want [/mako -c %s] (the copied container config)", entry, configDest)
	}
	makoCheck(t, "container/mako.container.yaml")
	cfg, err := config.Load("container/mako.container.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.API == nil || cfg.Metrics.Prometheus == nil {
		t.Fatal("container config: want api and metrics.prometheus blocks")
	}
	for _, l := range []struct {
		name string
		host string
		port int
	}{{"ws", cfg.WS.Host, cfg.WS.Port}, {"api", cfg.API.Host, cfg.API.Port}, {"metrics", cfg.Metrics.Prometheus.Host, cfg.Metrics.Prometheus.Port}} {
		if l.host != "0.0.0.0" {
			t.Errorf("container config %s.host %q: a port mapping cannot reach it, want 0.0.0.0", l.name, l.host)
		}
		found := false
		for _, p := range expose {
			found = found || p == l.port
		}
		if !found {
			t.Errorf("container config %s port %d is not in EXPOSE %v", l.name, l.port, expose)
		}
	}
}

// unitKeys reads a systemd unit: section.Key → values (a key may repeat).
func unitKeys(t *testing.T, path string) map[string][]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Errorf("%s: %q is not key=value", path, line)
			}
			out[section+"."+k] = append(out[section+"."+k], v)
		}
	}
	return out
}

// The systemd unit: checks the config before starting, drains on SIGTERM
// within TimeoutStopSec, has the file limit for its connections and runs
// unprivileged; systemd-analyze verify accepts it where systemd is.
func TestSystemdUnit(t *testing.T) {
	const unit = "systemd/mako.service"
	u := unitKeys(t, unit)
	one := func(k string) string {
		if len(u[k]) != 1 {
			t.Errorf("%s: %d values, want 1", k, len(u[k]))
			return ""
		}
		return u[k][0]
	}
	if v := one("Service.Type"); v != "exec" && v != "simple" {
		t.Errorf("Type=%s: mako does not fork or notify, want exec or simple", v)
	}
	start, pre := one("Service.ExecStart"), one("Service.ExecStartPre")
	cfgArg := strings.TrimPrefix(start, strings.Fields(start)[0]+" ")
	if pre != strings.Fields(start)[0]+" check "+cfgArg {
		t.Errorf("ExecStartPre=%s: want `mako check` of ExecStart's config (%s)", pre, cfgArg)
	}
	if v := one("Service.KillSignal"); v != "SIGTERM" {
		t.Errorf("KillSignal=%s: mako drains on SIGTERM", v)
	}
	stop, err := strconv.ParseFloat(strings.TrimSuffix(one("Service.TimeoutStopSec"), "s"), 64)
	drain := float64(config.Default().Limits.DrainTimeout)
	if ex, e := config.Load("mako.example.yaml"); e == nil && float64(ex.Limits.DrainTimeout) > drain {
		drain = float64(ex.Limits.DrainTimeout)
	}
	if err != nil || stop <= drain {
		t.Errorf("TimeoutStopSec=%v: want seconds above limits.drain_timeout (%vs)", stop, drain)
	}
	if n, err := strconv.Atoi(one("Service.LimitNOFILE")); err != nil || n < 1<<20 {
		t.Errorf("LimitNOFILE=%v: want at least 1048576 (one descriptor per connection)", n)
	}
	for k, want := range map[string]string{
		"Service.NoNewPrivileges": "yes", "Service.ProtectSystem": "strict", "Service.DynamicUser": "yes",
		"Service.ProtectHome": "yes", "Service.PrivateTmp": "yes", "Service.CapabilityBoundingSet": "",
	} {
		if v := one(k); v != want {
			t.Errorf("%s=%s, want %s", k, v, want)
		}
	}
	if u["Install.WantedBy"] == nil {
		t.Error("no [Install] WantedBy: systemctl enable would do nothing")
	}

	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: the unit is not verified by systemd")
		return
	}
	// The unit names /usr/local/bin/mako; verify wants it to exist, so the
	// copy points at the mako built for this test.
	raw, _ := os.ReadFile(unit)
	dir := t.TempDir()
	copyPath := filepath.Join(dir, "mako.service")
	if err := os.WriteFile(copyPath, bytes.ReplaceAll(raw, []byte("/usr/local/bin/mako"), []byte(makoBin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", copyPath).CombinedOutput()
	// An unknown or misspelt key is only a warning (exit 0): any output fails.
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
	}
}

// commentedSettings checks that every setting line of a file is directly
// preceded by a comment line (the why), and returns the settings.
func commentedSettings(t *testing.T, path string, isSetting func(string) bool) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var settings []string
	prev := ""
	for i, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && line[0] != '#' {
			if !isSetting(line) {
				t.Errorf("%s:%d: %q is neither a comment nor a setting", path, i+1, line)
			} else if !strings.HasPrefix(prev, "#") || len(strings.TrimSpace(strings.TrimLeft(prev, "#"))) < 10 {
				t.Errorf("%s:%d: %q has no comment line above it saying why", path, i+1, line)
			}
			settings = append(settings, line)
		}
		prev = line
	}
	return settings
}

var sysctlLine = regexp.MustCompile(`^([a-z0-9_.-]+)\s*=\s*(\S.*)$`)

// Kernel settings: each `key = value` has its why on the line above, each
// key once, values numeric; and the nofile limits fit under fs.nr_open.
func TestSysctlAndLimits(t *testing.T) {
	settings := commentedSettings(t, "sysctl/99-mako.conf", sysctlLine.MatchString)
	vals := map[string][]int{}
	for _, s := range settings {
		m := sysctlLine.FindStringSubmatch(s)
		if vals[m[1]] != nil {
			t.Errorf("sysctl %s set twice", m[1])
		}
		for _, f := range strings.Fields(m[2]) {
			n, err := strconv.Atoi(f)
			if err != nil {
				t.Errorf("sysctl %s = %s: not numeric", m[1], m[2])
			}
			vals[m[1]] = append(vals[m[1]], n)
		}
	}
	if len(vals) < 5 {
		t.Fatalf("sysctl: %d settings parsed", len(vals))
	}
	for _, k := range []string{"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem", "net.ipv4.tcp_mem"} {
		if v := vals[k]; len(v) != 3 || v[0] > v[1] || v[1] > v[2] {
			t.Errorf("%s = %v: want three ascending values (min, default, max)", k, v)
		}
	}
	nrOpen := vals["fs.nr_open"]

	limitLine := regexp.MustCompile(`^\S+\s+(soft|hard|-)\s+(\w+)\s+(\d+|unlimited)$`)
	for _, s := range commentedSettings(t, "sysctl/limits.conf", limitLine.MatchString) {
		m := limitLine.FindStringSubmatch(s)
		if m[2] != "nofile" {
			continue
		}
		n, _ := strconv.Atoi(m[3])
		if len(nrOpen) == 1 && n > nrOpen[0] {
			t.Errorf("limits.conf nofile %d exceeds fs.nr_open %d: the login would fail", n, nrOpen[0])
		}
	}
	u := unitKeys(t, "systemd/mako.service")
	if n, _ := strconv.Atoi(u["Service.LimitNOFILE"][0]); len(nrOpen) == 1 && n > nrOpen[0] {
		t.Errorf("LimitNOFILE %d exceeds fs.nr_open %d", n, nrOpen[0])
	}
}
