package deploy

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"mako/config"
	"mako/internal/e2e"
	"mako/internal/redistest"
)

// dashboard is the part of Grafana's dashboard JSON the checks read.
type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Schema     int     `json:"schemaVersion"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Definition string          `json:"definition"`
			Query      json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

func loadDashboard(t *testing.T) *dashboard {
	t.Helper()
	raw, err := os.ReadFile("grafana/mako.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("grafana/mako.json: %v", err)
	}
	return &d
}

// query is one PromQL expression of the dashboard and where it is.
type query struct{ where, expr string }

// queries lists every PromQL expression: panel targets and the query
// variables (label_values(metric, label) is Grafana's, not PromQL).
func (d *dashboard) queries(t *testing.T) []query {
	t.Helper()
	var qs []query
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			qs = append(qs, query{p.Title + "/" + tg.RefID, tg.Expr})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatalf("variable %s: query: %v", v.Name, err)
		}
		if q.Query != v.Definition {
			t.Errorf("variable %s: definition %q differs from query %q", v.Name, v.Definition, q.Query)
		}
		qs = append(qs, query{"variable " + v.Name, q.Query})
	}
	return qs
}

var (
	grafanaVar  = regexp.MustCompile(`\$\{?\w+\}?`)
	stringLit   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	rangeSel    = regexp.MustCompile(`\[[^\]]*\]`)
	matchers    = regexp.MustCompile(`\{([^}]*)\}`)
	matcherName = regexp.MustCompile(`([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)`)
	grouping    = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	token       = regexp.MustCompile(`[a-zA-Z_:][\w:]*|\d*\.?\d+(?:[eE][-+]?\d+)?`)
	labelValues = regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][\w:]*)\s*,\s*(\w+)\s*\)$`)
)

// promqlFunctions are the PromQL functions and aggregations a dashboard
// may call; an unknown name before "(" is a typo, not a metric.
var promqlFunctions = map[string]bool{}

func init() {
	for _, f := range strings.Fields(`abs absent absent_over_time avg avg_over_time bottomk ceil
		changes clamp clamp_max clamp_min count count_over_time count_values day_of_month
		day_of_week deriv exp floor group histogram_quantile holt_winters idelta increase
		irate label_join label_replace last_over_time ln log2 log10 max max_over_time min
		min_over_time predict_linear present_over_time quantile quantile_over_time rate
		resets round scalar sgn sort sort_desc sqrt stddev stddev_over_time stdvar
		stdvar_over_time sum sum_over_time time timestamp topk vector`) {
		promqlFunctions[f] = true
	}
}

var promqlKeywords = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "inf": true, "nan": true, "atan2": true}

// promqlNames returns the metric names an expression selects and the label
// names it matches or groups by. Grafana's $variables are dropped first,
// then strings, range selectors, matchers and grouping clauses; what is
// left are functions (followed by "("), keywords, numbers and metric names.
func promqlNames(expr string) (metrics, labels []string, err error) {
	if m := labelValues.FindStringSubmatch(expr); m != nil {
		return []string{m[1]}, []string{m[2]}, nil
	}
	s := stringLit.ReplaceAllString(grafanaVar.ReplaceAllString(expr, ""), `""`)
	s = rangeSel.ReplaceAllString(s, "")
	for _, m := range matchers.FindAllStringSubmatch(s, -1) {
		for _, n := range matcherName.FindAllStringSubmatch(m[1], -1) {
			labels = append(labels, n[1])
		}
	}
	s = matchers.ReplaceAllString(s, " ")
	for _, m := range grouping.FindAllStringSubmatch(s, -1) {
		for _, l := range strings.Split(m[2], ",") {
			if l = strings.TrimSpace(l); l != "" {
				labels = append(labels, l)
			}
		}
	}
	s = grouping.ReplaceAllString(s, " ")
	for _, loc := range token.FindAllStringIndex(s, -1) {
		tok := s[loc[0]:loc[1]]
		if tok[0] >= '0' && tok[0] <= '9' || tok[0] == '.' || promqlKeywords[tok] {
			continue
		}
		if strings.HasPrefix(strings.TrimSpace(s[loc[1]:]), "(") {
			if !promqlFunctions[tok] {
				return nil, nil, &unknownFunc{tok}
			}
			continue
		}
		metrics = append(metrics, tok)
	}
	return metrics, labels, nil
}

type unknownFunc struct{ name string }

func (e *unknownFunc) Error() string { return "unknown PromQL function " + e.name }

// The name extraction itself, on the shapes the dashboard uses.
func TestPromQLNames(t *testing.T) {
	for _, c := range []struct {
		expr            string
		metrics, labels []string
	}{
		{`socketshark_service_state{instance=~"$instance"}`, []string{"socketshark_service_state"}, []string{"instance"}},
		{`histogram_quantile(0.99, sum by (le, service) (rate(mako_service_call_duration_seconds_bucket{instance=~"$instance"}[$__rate_interval])))`,
			[]string{"mako_service_call_duration_seconds_bucket"}, []string{"instance", "le", "service"}},
		{`sum(rate(a_total{status="error",x!~"b{c}"}[5m])) by (event) / clamp_min(sum(rate(b_total[1h:1m])), 1e-9)`,
			[]string{"a_total", "b_total"}, []string{"event", "status", "x"}},
		{`process_open_fds / process_max_fds and on(instance) go_threads > 2`,
			[]string{"process_open_fds", "process_max_fds", "go_threads"}, []string{"instance"}},
		{`label_values(socketshark_service_state, instance)`, []string{"socketshark_service_state"}, []string{"instance"}},
	} {
		m, l, err := promqlNames(c.expr)
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		sort.Strings(l)
		sort.Strings(c.labels)
		if !slices.Equal(m, c.metrics) || !slices.Equal(l, c.labels) {
			t.Errorf("%s:\n got %v %v\nwant %v %v", c.expr, m, l, c.metrics, c.labels)
		}
	}
	if _, _, err := promqlNames(`histogram_quantil(0.5, x_bucket)`); err == nil {
		t.Error("a misspelt function was taken for a metric")
	}
}

// TestDashboardShape: the JSON is a Grafana dashboard whose panels all
// query the dashboard's Prometheus data source, with unique ids and refIds,
// on the 24-column grid, covering what an operator of mako watches.
func TestDashboardShape(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" || d.Schema == 0 {
		t.Errorf("uid %q, title %q, schemaVersion %d: want all set", d.UID, d.Title, d.Schema)
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d repeated", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: gridPos %+v off the 24-column grid", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Title == "" || len(p.Targets) == 0 {
			t.Errorf("panel %d: title %q, %d targets: want a title and a query", p.ID, p.Title, len(p.Targets))
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource %+v, want the ${datasource} variable", p.Title, p.Datasource)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if refs[tg.RefID] || tg.RefID == "" || strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q: target %q: want a unique refId and an expr", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
		}
	}
	used := map[string]bool{}
	for _, q := range d.queries(t) {
		m, _, err := promqlNames(q.expr)
		if err != nil {
			t.Errorf("%s: %v", q.where, err)
		}
		if len(m) == 0 {
			t.Errorf("%s: %q names no metric", q.where, q.expr)
		}
		for _, n := range m {
			used[n] = true
		}
	}
	for _, n := range []string{
		"socketshark_connection_count", "mako_tcp_connections", "socketshark_event_success_counter",
		"mako_service_call_duration_seconds_bucket", "mako_fanout_latency_seconds_bucket",
		"mako_service_queue", "mako_fanout_queue_bytes", "mako_loop_backlog", "mako_cuts_total",
		"mako_redis_gaps_total", "mako_client_limit_hits_total", "go_goroutines",
		"process_resident_memory_bytes",
	} {
		if !used[n] {
			t.Errorf("no panel queries %s", n)
		}
	}
}

// exposed reports whether name is a series of the scraped families: a
// family itself, or a histogram's _bucket/_sum/_count, or a summary's
// _sum/_count. It returns the family's label names (le and quantile
// included).
func exposed(fams map[string]*dto.MetricFamily, name string) ([]string, bool) {
	labelsOf := func(mf *dto.MetricFamily, extra ...string) []string {
		ls := extra
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName())
			}
		}
		return ls
	}
	if mf := fams[name]; mf != nil {
		if mf.GetType() == dto.MetricType_SUMMARY {
			return labelsOf(mf, "quantile"), true
		}
		return labelsOf(mf), mf.GetType() != dto.MetricType_HISTOGRAM
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		mf := fams[strings.TrimSuffix(name, suf)]
		if !strings.HasSuffix(name, suf) || mf == nil {
			continue
		}
		switch {
		case mf.GetType() == dto.MetricType_HISTOGRAM && suf == "_bucket":
			return labelsOf(mf, "le"), true
		case mf.GetType() == dto.MetricType_HISTOGRAM, mf.GetType() == dto.MetricType_SUMMARY && suf != "_bucket":
			return labelsOf(mf), true
		}
	}
	return nil, false
}

// scrapeMako starts a real mako with a service that has callbacks (the call
// histogram's series exist per configured callback), optionally on a real
// redis-server, subscribes once (a service's queue series appear with its
// first call) and reads /metrics.
func scrapeMako(t *testing.T, redis bool) map[string]*dto.MetricFamily {
	t.Helper()
	cfg := e2e.Config()
	e2e.ServeMetrics(t, cfg)
	svc := e2e.NewService(t)
	open := false
	cfg.Services["books"] = &config.Service{RequireAuthentication: &open, Authorizer: svc.URL("/authorizer"), OnMessage: svc.URL("/on_message")}
	if redis {
		r := redistest.Start(t)
		cfg.Redis = &config.Redis{URL: "redis://" + r.Addr() + "/0", Host: "localhost", Port: 6379,
			PingInterval: 1, PingTimeout: 1, OnLoss: "drain"}
	}
	srv := e2e.StartServer(t, cfg)
	c := e2e.Dial(t, srv)
	if m := c.Roundtrip(map[string]any{"event": "subscribe", "subscription": "books.b1"}); m["status"] != "ok" {
		t.Fatalf("subscribe: %v", m)
	}
	return e2e.ScrapeFamiliesAt(t, srv.MetricsAddr())
}

// TestDashboardMetricsExposed: every metric every dashboard query names is
// a series a real mako's /metrics exposes, and every label the query
// matches or groups by is one of that metric's labels (or a label
// Prometheus adds to every target). With Redis configured nothing may be
// missing; without it, only the mako_redis_ series of the Redis row.
func TestDashboardMetricsExposed(t *testing.T) {
	d := loadDashboard(t)
	for _, withRedis := range []bool{false, true} {
		name := map[bool]string{false: "embedded broker", true: "redis"}[withRedis]
		t.Run(name, func(t *testing.T) {
			fams := scrapeMako(t, withRedis)
			for _, q := range d.queries(t) {
				metrics, labels, err := promqlNames(q.expr)
				if err != nil {
					t.Errorf("%s: %v", q.where, err)
					continue
				}
				known := []string{"instance", "job"}
				for _, m := range metrics {
					ls, ok := exposed(fams, m)
					if !ok && !(withRedis == false && strings.HasPrefix(m, "mako_redis_")) {
						t.Errorf("%s: %s is not exposed by mako's /metrics (%s)", q.where, m, name)
					}
					known = append(known, ls...)
				}
				for _, l := range labels {
					if !slices.Contains(known, l) {
						t.Errorf("%s: label %q is on none of %v", q.where, l, metrics)
					}
				}
			}
			if !withRedis {
				return
			}
			// The exemption above is only for series that exist with Redis.
			for _, n := range []string{"mako_redis_outages_total", "mako_redis_gaps_total", "mako_redis_gap_seconds_total", "mako_redis_drain_closed_total"} {
				if fams[n] == nil {
					t.Errorf("%s: missing with redis configured", n)
				}
			}
		})
	}
}
