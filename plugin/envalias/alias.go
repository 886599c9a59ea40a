package envalias

import (
	"strings"
	"unicode/utf8"

	"github.com/warpdns/warpdns/internal/kubedns"

	"github.com/miekg/dns"
	"k8s.io/apimachinery/pkg/util/validation"
)

// aliaser recognizes alias names. It is pure: no I/O, no kubernetes.
type aliaser struct {
	envs    []string // lower case, longest first, so that "stg-eu" wins over "stg"
	sep     string   // lower case
	zones   []string // the kubernetes zones the ENV-SVC form applies in; zones[0] is the domain form's target
	domains []string // the domain form: SVC.NS.ENV.DOMAIN
}

// alias is one recognized name. The query goes on as name; in the reply,
// names at or below target come back at or below asked. For
// _http._tcp.stg-api.platform.svc.cluster.local, target is
// api.platform.svc.cluster.local. and asked stg-api.platform.svc.cluster.local.
type alias struct {
	env    string
	name   string // the rewritten qname, lower case
	target string // the Service's name (or all of name, if shorter): a suffix of name
	asked  string // what target stands for, as spelled in the question: a suffix of qname
	// The Service the alias label itself would name (ENV-SVC in NS), as
	// object.ServiceKey spells it; empty for the domain form, which cannot
	// collide with a Service.
	literalKey string
	// The domain form also moves the zone apex (the SOA of negative
	// answers) from zone to askedZone.
	zone, askedZone string
}

// aliasOf returns the alias qname stands for, if any.
func (a *aliaser) aliasOf(qname string) (alias, bool) {
	// Service names are plain ASCII; refusing escapes (and bytes a name
	// off the wire cannot hold unescaped) keeps the label and case
	// arithmetic below simple: lower casing keeps every length.
	if strings.IndexByte(qname, '\\') >= 0 || !isASCII(qname) {
		return alias{}, false
	}
	for _, z := range a.zones {
		if base, ok := kubedns.CutZone(qname, z); ok {
			if al, ok := a.envForm(qname, base, z); ok {
				return al, true
			}
		}
	}
	for _, d := range a.domains {
		if base, ok := kubedns.CutZone(qname, d); ok {
			if al, ok := a.domainForm(qname, base); ok {
				return al, true
			}
		}
	}
	return alias{}, false
}

// envForm handles [PREFIX.]ENV-SVC.NS.svc.ZONE; base is qname without ZONE.
func (a *aliaser) envForm(qname, base, zone string) (alias, bool) {
	rest, svc, ok := lastLabel(base)
	if !ok || !strings.EqualFold(svc, "svc") {
		return alias{}, false
	}
	rest, ns, ok := lastLabel(rest)
	if !ok {
		return alias{}, false
	}
	prefix, label, ok := lastLabel(rest)
	if !ok {
		return alias{}, false
	}
	env := a.matchEnv(label)
	if env == "" {
		return alias{}, false
	}
	// The rest must be a Service name (Kubernetes' DNS-1035 rule): wildcards
	// and other junk do not become queries for names the alias did not ask for.
	service := strings.ToLower(label[len(env)+len(a.sep):])
	if len(validation.IsDNS1035Label(service)) > 0 {
		return alias{}, false
	}

	name := strings.ToLower(prefix) + service + "." + strings.ToLower(ns) + ".svc." + suffix(zone)
	return alias{
		env:    env,
		name:   name,
		target: name[len(prefix):],
		asked:  qname[len(prefix):],
		// ENV-SVC.NS as it stands in qname.
		literalKey: strings.ToLower(qname[len(prefix) : len(prefix)+len(label)+1+len(ns)]),
	}, true
}

// domainForm handles [[PREFIX.]SVC.]NS.]ENV.DOMAIN; base is qname without
// DOMAIN. It maps to the same name with ENV.DOMAIN replaced by svc.ZONE:
// every name in the environment's domain has its counterpart.
func (a *aliaser) domainForm(qname, base string) (alias, bool) {
	rest, label, ok := lastLabel(base)
	if !ok || len(a.zones) == 0 {
		return alias{}, false
	}
	env := ""
	for _, e := range a.envs {
		if strings.EqualFold(label, e) {
			env = e
			break
		}
	}
	if env == "" {
		return alias{}, false
	}
	name := strings.ToLower(rest) + "svc." + suffix(a.zones[0])
	if _, ok := dns.IsDomainName(name); !ok { // svc.ZONE may be longer than ENV.DOMAIN
		return alias{}, false
	}

	// The reply is about SVC.NS (or the whole name, if it is shorter).
	prefix := ""
	if r, _, ok := lastLabel(rest); ok {
		if p, _, ok := lastLabel(r); ok {
			prefix = p
		}
	}
	return alias{
		env:       env,
		name:      name,
		target:    name[len(prefix):],
		asked:     qname[len(prefix):],
		zone:      a.zones[0],
		askedZone: qname[len(rest):],
	}, true
}

// suffix is what a name below zone ends with after the dot of its last label: zone, or nothing
// for the root (whose name is that dot).
func suffix(zone string) string {
	if zone == "." {
		return ""
	}
	return zone
}

// matchEnv returns the longest ENV for which label is ENV SEP SVC.
func (a *aliaser) matchEnv(label string) string {
	for _, env := range a.envs {
		n := len(env) + len(a.sep)
		if len(label) > n && strings.EqualFold(label[:len(env)], env) && strings.EqualFold(label[len(env):n], a.sep) {
			return env
		}
	}
	return ""
}

// lastLabel splits "a.b.c." into "a.b." and "c". s must end with a dot
// and contain no escapes; ok is false if there is no (non-empty) label.
func lastLabel(s string) (rest, label string, ok bool) {
	if len(s) < 2 || s[len(s)-1] != '.' {
		return "", "", false
	}
	i := strings.LastIndexByte(s[:len(s)-1], '.')
	label = s[i+1 : len(s)-1]
	return s[:i+1], label, label != ""
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
