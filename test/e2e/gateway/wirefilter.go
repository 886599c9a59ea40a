package gateway

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"go4.org/netipx"
)

// The part of Gateway's wirefilter expression language that the Terraform
// here and the organisation's policies in the tests use (Gateway policy
// expressions,
// https://developers.cloudflare.com/cloudflare-one/traffic-policies/expression-syntax/):
// a field compared with ==, != or in {set}, matches "regex", any(field[*]
// in {set}) for array fields, and, or, not (also &&, ||), parentheses.
// Anything else is an error, never a guess. Regular expressions are lexed
// as cloudflare/wirefilter does (engine/src/rhs_types/regex/mod.rs,
// lex_regex_from_literal: a backslash is kept with the character after it,
// except before a quote) and are Rust regex syntax, which Go's RE2 reads the
// same for what is used here.

// Expr is a parsed expression.
type Expr interface {
	eval(f *Fields) (bool, error)
	String() string
}

// Fields are the values an expression is evaluated against; a field left
// empty does not match.
type Fields struct {
	FQDN   string     // dns.fqdn, without the trailing dot
	DstIP  netip.Addr // net.dst.ip
	VNetID string     // net.vnet_id
	Email  string     // identity.email
	Groups []string   // identity.groups.name
}

type (
	andExpr struct{ l, r Expr }
	orExpr  struct{ l, r Expr }
	notExpr struct{ e Expr }
	// cmpExpr is field op value; any marks any(field[*] op value).
	cmpExpr struct {
		field, op string
		any       bool
		str       string         // == and != on strings
		strs      []string       // in {"a" "b"}
		ips       *netipx.IPSet  // in {10.0.0.0/8 ...} and == on IPs
		re        *regexp.Regexp // matches
		text      string
	}
)

func (e andExpr) String() string { return "(" + e.l.String() + " and " + e.r.String() + ")" }
func (e orExpr) String() string  { return "(" + e.l.String() + " or " + e.r.String() + ")" }
func (e notExpr) String() string { return "not(" + e.e.String() + ")" }
func (e cmpExpr) String() string { return e.text }

func (e andExpr) eval(f *Fields) (bool, error) {
	l, err := e.l.eval(f)
	if err != nil || !l {
		return false, err
	}
	return e.r.eval(f)
}

func (e orExpr) eval(f *Fields) (bool, error) {
	l, err := e.l.eval(f)
	if err != nil || l {
		return l, err
	}
	return e.r.eval(f)
}

func (e notExpr) eval(f *Fields) (bool, error) {
	v, err := e.e.eval(f)
	return !v, err
}

// fields: the type of each supported field (Gateway's selector pages:
// dns.fqdn Host, net.dst.ip Destination IP, net.vnet_id Virtual Network,
// identity.email User Email, identity.groups.name User Group Names).
var fields = map[string]string{
	"dns.fqdn": "string", "net.vnet_id": "string", "identity.email": "string",
	"net.dst.ip": "ip", "identity.groups.name": "array",
}

func (e cmpExpr) eval(f *Fields) (bool, error) {
	var values []string
	switch e.field {
	case "dns.fqdn":
		values = []string{f.FQDN}
	case "net.vnet_id":
		values = []string{f.VNetID}
	case "identity.email":
		values = []string{f.Email}
	case "identity.groups.name":
		values = f.Groups
	case "net.dst.ip":
		if !f.DstIP.IsValid() {
			return false, nil
		}
		in := e.ips.Contains(f.DstIP)
		return in == (e.op != "!="), nil
	}
	for _, v := range values {
		var m bool
		switch e.op {
		case "==":
			m = v == e.str
		case "!=":
			m = v != e.str
		case "in":
			m = slices.Contains(e.strs, v)
		case "matches":
			m = e.re.MatchString(v)
		}
		if m {
			return true, nil
		}
	}
	return false, nil
}

// Parse parses an expression; "" is nil (a policy without that condition
// matches everything).
func Parse(s string) (Expr, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	p := &parser{src: s}
	e, err := p.or()
	if p.skip(); err == nil && p.pos < len(p.src) {
		err = p.errorf("unexpected %q", p.src[p.pos:])
	}
	if err != nil {
		return nil, fmt.Errorf("wirefilter %q: %w", s, err)
	}
	return e, nil
}

// Match evaluates e (nil matches).
func Match(e Expr, f *Fields) (bool, error) {
	if e == nil {
		return true, nil
	}
	return e.eval(f)
}

type parser struct {
	src string
	pos int
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("at %d: "+format, append([]any{p.pos}, args...)...)
}

func (p *parser) skip() {
	for p.pos < len(p.src) && unicode.IsSpace(rune(p.src[p.pos])) {
		p.pos++
	}
}

// word consumes w (a keyword or symbol) if it comes next.
func (p *parser) word(w string) bool {
	p.skip()
	if !strings.HasPrefix(p.src[p.pos:], w) {
		return false
	}
	end := p.pos + len(w)
	if isIdent(w[len(w)-1]) && end < len(p.src) && isIdent(p.src[end]) {
		return false // "and" in "android"
	}
	p.pos = end
	return true
}

func isIdent(c byte) bool {
	return c == '_' || c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func (p *parser) or() (Expr, error) {
	l, err := p.and()
	for err == nil && (p.word("or") || p.word("||")) {
		var r Expr
		if r, err = p.and(); err == nil {
			l = orExpr{l, r}
		}
	}
	return l, err
}

func (p *parser) and() (Expr, error) {
	l, err := p.unary()
	for err == nil && (p.word("and") || p.word("&&")) {
		var r Expr
		if r, err = p.unary(); err == nil {
			l = andExpr{l, r}
		}
	}
	return l, err
}

func (p *parser) unary() (Expr, error) {
	switch {
	case p.word("not"):
		e, err := p.unary()
		return notExpr{e}, err
	case p.word("("):
		e, err := p.or()
		if err == nil && !p.word(")") {
			err = p.errorf("missing )")
		}
		return e, err
	case p.word("any("):
		c, err := p.comparison(true)
		if err == nil && !p.word(")") {
			err = p.errorf("missing ) of any(")
		}
		return c, err
	}
	return p.comparison(false)
}

func (p *parser) ident() string {
	p.skip()
	start := p.pos
	for p.pos < len(p.src) && isIdent(p.src[p.pos]) {
		p.pos++
	}
	return p.src[start:p.pos]
}

func (p *parser) comparison(anyOf bool) (Expr, error) {
	start := p.pos
	field := p.ident()
	typ, ok := fields[field]
	if !ok {
		return nil, p.errorf("field %q not modelled", field)
	}
	if array := p.word("[*]"); array != (typ == "array") || array != anyOf {
		return nil, p.errorf("%s: an array field is compared inside any(%s[*] ...), a scalar one directly", field, field)
	}
	c := cmpExpr{field: field, any: anyOf}
	switch {
	case p.word("=="):
		c.op = "=="
	case p.word("!="):
		c.op = "!="
	case p.word("in"):
		c.op = "in"
	case p.word("matches"):
		c.op = "matches"
	default:
		return nil, p.errorf("%s: expected ==, !=, in or matches", field)
	}
	var err error
	switch {
	case typ == "ip" && (c.op == "in" || c.op == "==" || c.op == "!="):
		c.ips, err = p.ipValues(c.op == "in")
	case typ == "ip":
		err = p.errorf("%s %s: not for addresses", field, c.op)
	case c.op == "matches":
		var re string
		if re, err = p.regexLiteral(); err == nil {
			c.re, err = regexp.Compile(re)
		}
	case c.op == "in":
		c.strs, err = p.stringSet()
	default:
		c.str, err = p.stringLiteral()
	}
	c.text = strings.TrimSpace(p.src[start:p.pos])
	if anyOf {
		c.text = "any(" + c.text + ")"
	}
	return c, err
}

func (p *parser) ipValues(set bool) (*netipx.IPSet, error) {
	var b netipx.IPSetBuilder
	p.skip()
	if set && !p.word("{") {
		return nil, p.errorf("expected {")
	}
	for {
		p.skip()
		if set && p.word("}") {
			break
		}
		start := p.pos
		for p.pos < len(p.src) && !unicode.IsSpace(rune(p.src[p.pos])) && p.src[p.pos] != '}' && p.src[p.pos] != ')' {
			p.pos++
		}
		tok := p.src[start:p.pos]
		if prefix, err := netip.ParsePrefix(tok); err == nil {
			b.AddPrefix(prefix)
		} else if addr, err := netip.ParseAddr(tok); err == nil {
			b.Add(addr)
		} else {
			return nil, p.errorf("not an address or CIDR: %q", tok)
		}
		if !set {
			break
		}
	}
	return b.IPSet()
}

func (p *parser) stringSet() ([]string, error) {
	if !p.word("{") {
		return nil, p.errorf("expected {")
	}
	var out []string
	for !p.word("}") {
		s, err := p.stringLiteral()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// stringLiteral reads "...": \" and \\ are the only escapes modelled.
func (p *parser) stringLiteral() (string, error) {
	p.skip()
	if !p.word(`"`) {
		return "", p.errorf("expected a string")
	}
	var b strings.Builder
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		p.pos++
		switch {
		case c == '"':
			return b.String(), nil
		case c == '\\' && p.pos < len(p.src) && (p.src[p.pos] == '"' || p.src[p.pos] == '\\'):
			b.WriteByte(p.src[p.pos])
			p.pos++
		case c == '\\':
			return "", p.errorf("escape not modelled")
		default:
			b.WriteByte(c)
		}
	}
	return "", p.errorf("missing ending quote")
}

// regexLiteral reads "..." as wirefilter's lex_regex_from_literal does.
func (p *parser) regexLiteral() (string, error) {
	p.skip()
	if !p.word(`"`) {
		return "", p.errorf("expected a regex string")
	}
	var b strings.Builder
	inClass := false
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		p.pos++
		switch {
		case c == '\\' && p.pos < len(p.src):
			next := p.src[p.pos]
			p.pos++
			if inClass || next != '"' {
				b.WriteByte('\\')
			}
			b.WriteByte(next)
		case c == '"' && !inClass:
			return b.String(), nil
		case c == '[' && !inClass:
			inClass = true
			b.WriteByte(c)
		case c == ']' && inClass:
			inClass = false
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return "", p.errorf("missing ending quote")
}

// CoreDNS renders a DNS policy's traffic expression in the expression
// language of CoreDNS' view plugin (expr-lang: name() is the query name
// with its trailing dot, which dns.fqdn has not), for the e2e's gateway.
func CoreDNS(e Expr) (string, error) {
	quote := func(s string) string {
		return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
	}
	const fqdn = "trimSuffix(lower(name()), '.')"
	switch e := e.(type) {
	case nil:
		return "true", nil
	case andExpr, orExpr:
		op, l, r := "&&", Expr(nil), Expr(nil)
		if a, ok := e.(andExpr); ok {
			l, r = a.l, a.r
		} else {
			op, l, r = "||", e.(orExpr).l, e.(orExpr).r
		}
		ls, err := CoreDNS(l)
		if err != nil {
			return "", err
		}
		rs, err := CoreDNS(r)
		return "(" + ls + " " + op + " " + rs + ")", err
	case notExpr:
		s, err := CoreDNS(e.e)
		return "!(" + s + ")", err
	case cmpExpr:
		if e.field != "dns.fqdn" {
			return "", fmt.Errorf("%s: only dns.fqdn is rendered for CoreDNS", e.text)
		}
		switch e.op {
		case "matches":
			return fqdn + " matches " + quote(e.re.String()), nil
		case "==", "!=":
			return fqdn + " " + e.op + " " + quote(e.str), nil
		}
		var alts []string
		for _, s := range e.strs {
			alts = append(alts, quote(s))
		}
		return fqdn + " in [" + strings.Join(alts, ", ") + "]", nil
	}
	return "", fmt.Errorf("%v: not rendered", e)
}

// Destinations is the set of addresses within a virtual network's routes
// that a network policy's traffic expression matches (net.dst.ip,
// net.vnet_id), for the e2e's gateway routing rules.
func Destinations(e Expr, vnet string, routes *netipx.IPSet) (*netipx.IPSet, error) {
	var b netipx.IPSetBuilder
	switch e := e.(type) {
	case nil:
		b.AddSet(routes)
	case andExpr, orExpr:
		l, r := Expr(nil), Expr(nil)
		if a, ok := e.(andExpr); ok {
			l, r = a.l, a.r
		} else {
			l, r = e.(orExpr).l, e.(orExpr).r
		}
		ls, err := Destinations(l, vnet, routes)
		if err != nil {
			return nil, err
		}
		rs, err := Destinations(r, vnet, routes)
		if err != nil {
			return nil, err
		}
		b.AddSet(ls)
		if _, ok := e.(andExpr); ok {
			b.Intersect(rs)
		} else {
			b.AddSet(rs)
		}
	case notExpr:
		s, err := Destinations(e.e, vnet, routes)
		if err != nil {
			return nil, err
		}
		b.AddSet(routes)
		b.RemoveSet(s)
	case cmpExpr:
		switch {
		case e.field == "net.dst.ip":
			b.AddSet(e.ips)
			if e.op == "!=" {
				b.Complement()
			}
			b.Intersect(routes)
		case e.field == "net.vnet_id" && (e.op == "==" || e.op == "!=") && (e.str == vnet) == (e.op == "=="):
			b.AddSet(routes)
		case e.field == "net.vnet_id" && (e.op == "==" || e.op == "!="):
		default:
			return nil, fmt.Errorf("%s: not modelled for network routing", e.text)
		}
	default:
		return nil, fmt.Errorf("%v: not modelled", e)
	}
	return b.IPSet()
}
