// Package tf evaluates a Terraform module of manifests/cloudflare for the
// tests, without a terraform binary: HCL parses it, its inputs are typed as
// Terraform types them (ext/typeexpr: type constraints, optional
// attributes and their defaults; nullable = false turns a null into the
// default), its locals, outputs, resource attributes and preconditions are
// evaluated with go-cty's function library plus the cidr
// functions. What a resource exports (ids) is unknown, as in a plan.
// The stand-ins of test/e2e read the device profile (test/e2e/ldf) and
// the Gateway policies (test/e2e/gateway) through it, so that what they do
// is what the module says, not a second copy of it.
package tf

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/go-cty-funcs/cidr"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// functions are the Terraform functions the modules may use in what the
// tests evaluate, from go-cty's standard library (Terraform's own functions
// are built on it) and, for the cidr functions, hashicorp/go-cty-funcs (the
// same go-cidr arithmetic as Terraform's). Terraform's replace also takes a
// /regexp/; go-cty's does not, and the modules do not use that form.
var functions = map[string]function.Function{
	"cidrhost":        cidr.HostFunc,
	"cidrsubnet":      cidr.SubnetFunc,
	"coalesce":        stdlib.CoalesceFunc,
	"compact":         stdlib.CompactFunc,
	"concat":          stdlib.ConcatFunc,
	"contains":        stdlib.ContainsFunc,
	"distinct":        stdlib.DistinctFunc,
	"flatten":         stdlib.FlattenFunc,
	"format":          stdlib.FormatFunc,
	"join":            stdlib.JoinFunc,
	"length":          stdlib.LengthFunc,
	"lower":           stdlib.LowerFunc,
	"merge":           stdlib.MergeFunc,
	"parseint":        stdlib.ParseIntFunc,
	"range":           stdlib.RangeFunc,
	"replace":         stdlib.ReplaceFunc,
	"setintersection": stdlib.SetIntersectionFunc,
	"sort":            stdlib.SortFunc,
	"split":           stdlib.SplitFunc,
	"strcontains":     strContainsFunc,
	"tolist":          stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
	"toset":           stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)),
	"trimprefix":      stdlib.TrimPrefixFunc,
	"trimsuffix":      stdlib.TrimSuffixFunc,
}

// strContainsFunc is Terraform's strcontains(str, substr), which go-cty's
// library lacks: strings.Contains, as StrContainsFunc in hashicorp/terraform
// internal/lang/funcs/string.go (commit 14006c4d).
var strContainsFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "str", Type: cty.String}, {Name: "substr", Type: cty.String}},
	Type:   function.StaticReturnType(cty.Bool),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return cty.BoolVal(strings.Contains(args[0].AsString(), args[1].AsString())), nil
	},
})

// Module is one directory of .tf files, parsed.
type Module struct {
	Dir       string
	variables map[string]*variable
	locals    map[string]*hclsyntax.Attribute
	outputs   map[string]*hclsyntax.Attribute // their value expressions
	resources map[string]*hclsyntax.Block     // "type.name", data sources "data.type.name"
}

// variable is a module input: its type constraint, optional attributes'
// defaults and default value, as Terraform reads them.
type variable struct {
	typ      cty.Type
	defaults *typeexpr.Defaults
	def      *cty.Value // nil: required
	nonNull  bool       // nullable = false: a null given takes the default
}

// Load parses the module in dir.
func Load(dir string) (*Module, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("%s: no .tf files (%v)", dir, err)
	}
	m := &Module{Dir: dir, variables: map[string]*variable{}, locals: map[string]*hclsyntax.Attribute{},
		outputs: map[string]*hclsyntax.Attribute{}, resources: map[string]*hclsyntax.Block{}}
	parser := hclparse.NewParser()
	for _, f := range files {
		file, diags := parser.ParseHCLFile(f)
		if diags.HasErrors() {
			return nil, diags
		}
		for _, b := range file.Body.(*hclsyntax.Body).Blocks {
			switch b.Type {
			case "variable":
				v, err := parseVariable(b)
				if err != nil {
					return nil, fmt.Errorf("%s: variable %s: %w", f, b.Labels[0], err)
				}
				m.variables[b.Labels[0]] = v
			case "locals":
				maps.Copy(m.locals, b.Body.Attributes)
			case "output":
				m.outputs[b.Labels[0]] = b.Body.Attributes["value"]
			case "resource":
				m.resources[b.Labels[0]+"."+b.Labels[1]] = b
			case "data":
				m.resources["data."+b.Labels[0]+"."+b.Labels[1]] = b
			}
		}
	}
	return m, nil
}

func parseVariable(b *hclsyntax.Block) (*variable, error) {
	v := &variable{typ: cty.DynamicPseudoType}
	if a := b.Body.Attributes["type"]; a != nil {
		var diags hcl.Diagnostics
		if v.typ, v.defaults, diags = typeexpr.TypeConstraintWithDefaults(a.Expr); diags.HasErrors() {
			return nil, diags
		}
	}
	if a := b.Body.Attributes["default"]; a != nil {
		d, diags := a.Expr.Value(nil)
		if diags.HasErrors() {
			return nil, diags
		}
		v.def = &d
	}
	if a := b.Body.Attributes["nullable"]; a != nil {
		n, diags := a.Expr.Value(nil)
		if diags.HasErrors() {
			return nil, diags
		}
		v.nonNull = n.False()
	}
	return v, nil
}

// ReadVars reads the attributes of a .tfvars file: input values, as data.
func ReadVars(path string) (map[string]cty.Value, error) {
	file, diags := hclparse.NewParser().ParseHCLFile(path)
	if diags.HasErrors() {
		return nil, diags
	}
	attrs, diags := file.Body.JustAttributes()
	if diags.HasErrors() {
		return nil, diags
	}
	out := map[string]cty.Value{}
	for name, a := range attrs {
		if out[name], diags = a.Expr.Value(nil); diags.HasErrors() {
			return nil, diags
		}
	}
	return out, nil
}

// Declares says whether the module has input name.
func (m *Module) Declares(name string) bool { return m.variables[name] != nil }

// Resources lists the addresses ("type.name") of the module's resources of
// type typ, sorted.
func (m *Module) Resources(typ string) []string {
	var out []string
	for addr := range m.resources {
		if strings.HasPrefix(addr, typ+".") {
			out = append(out, addr)
		}
	}
	slices.Sort(out)
	return out
}

// value is the input as Terraform passes it in: given or default, defaults
// of optional attributes applied, converted to the type constraint (a
// missing optional attribute becomes null). A required input not given is
// unknown.
func (v *variable) value(given cty.Value, ok bool) (cty.Value, error) {
	switch {
	case ok && !(given.IsNull() && v.nonNull):
	case v.def != nil:
		given = *v.def
	default:
		return cty.UnknownVal(v.typ), nil
	}
	if v.defaults != nil {
		given = v.defaults.Apply(given)
	}
	return convert.Convert(given, v.typ)
}

// Values is a module evaluated for some inputs.
type Values struct {
	m   *Module
	ctx *hcl.EvalContext
}

// Evaluate types the inputs given (others take their defaults; those
// without one are unknown) and evaluates the locals. An input the module
// does not declare is an error.
func (m *Module) Evaluate(vars map[string]cty.Value) (*Values, error) {
	for name := range vars {
		if !m.Declares(name) {
			return nil, fmt.Errorf("%s declares no variable %q", m.Dir, name)
		}
	}
	varVals := map[string]cty.Value{}
	for name, v := range m.variables {
		given, ok := vars[name]
		val, err := v.value(given, ok)
		if err != nil {
			return nil, fmt.Errorf("%s: variable %s: %w", m.Dir, name, err)
		}
		varVals[name] = val
	}
	ctx := &hcl.EvalContext{Functions: functions, Variables: map[string]cty.Value{"var": cty.ObjectVal(varVals)}}
	// What resources export is known after apply only.
	byType := map[string]map[string]cty.Value{}
	for addr := range m.resources {
		parts := strings.Split(addr, ".") // type.name, or data.type.name
		if byType[parts[0]] == nil {
			byType[parts[0]] = map[string]cty.Value{}
		}
		byType[parts[0]][parts[1]] = cty.DynamicVal
	}
	for typ, names := range byType {
		ctx.Variables[typ] = cty.ObjectVal(names)
	}
	if err := evalLocals(ctx, m.locals); err != nil {
		return nil, fmt.Errorf("%s: %w", m.Dir, err)
	}
	return &Values{m: m, ctx: ctx}, nil
}

// Local is the value of local name.
func (v *Values) Local(name string) (cty.Value, bool) {
	val, ok := v.ctx.Variables["local"].AsValueMap()[name]
	return val, ok
}

// Output is the value of output name.
func (v *Values) Output(name string) (cty.Value, error) {
	a := v.m.outputs[name]
	if a == nil {
		return cty.NilVal, fmt.Errorf("%s: no output %q", v.m.Dir, name)
	}
	return v.eval(a.Expr, v.ctx)
}

// Instance is one instance of a resource (count and for_each expanded).
type Instance struct {
	Key   cty.Value // count.index or each.key; null without either
	block *hclsyntax.Block
	ctx   *hcl.EvalContext
	v     *Values
}

// Instances expands resource addr by its count or for_each, in the order
// Terraform lists them (count by index, for_each by key); a resource
// without either is one instance. A module without the resource has none.
func (v *Values) Instances(addr string) ([]Instance, error) {
	b := v.m.resources[addr]
	if b == nil {
		return nil, nil
	}
	one := func(key cty.Value, vars map[string]cty.Value) Instance {
		ctx := v.ctx.NewChild()
		ctx.Variables = vars
		return Instance{Key: key, block: b, ctx: ctx, v: v}
	}
	switch count, forEach := b.Body.Attributes["count"], b.Body.Attributes["for_each"]; {
	case count != nil:
		n, err := v.eval(count.Expr, v.ctx)
		if err != nil {
			return nil, fmt.Errorf("%s count: %w", addr, err)
		}
		var out []Instance
		for i := range intOf(n) {
			idx := cty.NumberIntVal(int64(i))
			out = append(out, one(idx, map[string]cty.Value{"count": cty.ObjectVal(map[string]cty.Value{"index": idx})}))
		}
		return out, nil
	case forEach != nil:
		coll, err := v.eval(forEach.Expr, v.ctx)
		if err != nil {
			return nil, fmt.Errorf("%s for_each: %w", addr, err)
		}
		var out []Instance
		for key, val := range coll.AsValueMap() { // a set of strings: key = value
			out = append(out, one(cty.StringVal(key), map[string]cty.Value{"each": cty.ObjectVal(map[string]cty.Value{"key": cty.StringVal(key), "value": val})}))
		}
		slices.SortFunc(out, func(a, b Instance) int { return strings.Compare(a.Key.AsString(), b.Key.AsString()) })
		return out, nil
	}
	return []Instance{one(cty.NullVal(cty.DynamicPseudoType), nil)}, nil
}

func intOf(n cty.Value) int {
	i, _ := n.AsBigFloat().Int64()
	return int(i)
}

// Attr is the value of the instance's attribute name (null when unset).
func (i Instance) Attr(name string) (cty.Value, error) {
	a := i.block.Body.Attributes[name]
	if a == nil {
		return cty.NullVal(cty.DynamicPseudoType), nil
	}
	return i.v.eval(a.Expr, i.ctx)
}

// Preconditions evaluates the instance's lifecycle preconditions and
// returns the error message of each that fails, as terraform plan would.
func (i Instance) Preconditions() ([]string, error) {
	var failed []string
	for _, lc := range i.block.Body.Blocks {
		if lc.Type != "lifecycle" {
			continue
		}
		for _, pc := range lc.Body.Blocks {
			if pc.Type != "precondition" {
				continue
			}
			ok, err := i.v.eval(pc.Body.Attributes["condition"].Expr, i.ctx)
			if err != nil {
				return nil, err
			}
			if ok.False() {
				msg, err := i.v.eval(pc.Body.Attributes["error_message"].Expr, i.ctx)
				if err != nil {
					return nil, err
				}
				failed = append(failed, msg.AsString())
			}
		}
	}
	return failed, nil
}

func (v *Values) eval(expr hcl.Expression, ctx *hcl.EvalContext) (cty.Value, error) {
	val, diags := expr.Value(ctx)
	if diags.HasErrors() {
		return cty.NilVal, diags
	}
	return val, nil
}

// evalLocals evaluates the locals into ctx, each after the locals it refers
// to (Terraform allows any order in the file).
func evalLocals(ctx *hcl.EvalContext, locals map[string]*hclsyntax.Attribute) error {
	done := map[string]cty.Value{}
	var eval func(name string, depth int) error
	eval = func(name string, depth int) error {
		if _, ok := done[name]; ok {
			return nil
		}
		a, ok := locals[name]
		if !ok || depth > len(locals) {
			return fmt.Errorf("local.%s: undefined, or the locals refer to each other in a cycle", name)
		}
		for _, tr := range a.Expr.Variables() {
			if tr.RootName() != "local" || len(tr) < 2 {
				continue
			}
			if ref, ok := tr[1].(hcl.TraverseAttr); ok {
				if err := eval(ref.Name, depth+1); err != nil {
					return err
				}
			}
		}
		ctx.Variables["local"] = cty.ObjectVal(done)
		v, diags := a.Expr.Value(ctx)
		if diags.HasErrors() {
			return fmt.Errorf("local.%s: %s", name, diags.Error())
		}
		done[name] = v
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(locals)) {
		if err := eval(name, 0); err != nil {
			return err
		}
	}
	ctx.Variables["local"] = cty.ObjectVal(done)
	return nil
}
