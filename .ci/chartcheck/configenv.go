package main

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
)

// envPrefix is roomhook's envconfig prefix.
const envPrefix = "ROOMHOOK_"

// setting is one field of roomhook's Config: its variable, Go type and default.
type setting struct {
	env        string // ROOMHOOK_…
	goType     string // "string", "int", "bool", "float64", "time.Duration", "[]string"
	defaultVal string
	hasDefault bool
}

// errNoConfigStruct is returned when config.go has no Config struct to read.
var errNoConfigStruct = errors.New("no struct type Config")

// readSettings reads the Config struct of roomhook's internal/server/config.go. Parsing the source rather than
// importing the package keeps this module free of roomhook's dependencies, and the chart is
// checked against the same file the binary is built from.
func readSettings(path string) ([]setting, error) {
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	var fields *ast.FieldList
	ast.Inspect(file, func(n ast.Node) bool {
		if ts, ok := n.(*ast.TypeSpec); ok && ts.Name.Name == "Config" {
			if st, ok := ts.Type.(*ast.StructType); ok {
				fields = st.Fields
			}
		}
		return fields == nil
	})
	if fields == nil {
		return nil, fmt.Errorf("%s: %w", path, errNoConfigStruct)
	}
	var out []setting
	for _, f := range fields.List {
		if f.Tag == nil {
			continue
		}
		raw, err := strconv.Unquote(f.Tag.Value)
		if err != nil {
			return nil, fmt.Errorf("%s: tag %s: %w", path, f.Tag.Value, err)
		}
		tag := reflect.StructTag(raw)
		name, ok := tag.Lookup("envconfig")
		if !ok {
			continue
		}
		def, hasDef := tag.Lookup("default")
		out = append(out, setting{
			env:        envPrefix + name,
			goType:     exprString(f.Type),
			defaultVal: def,
			hasDefault: hasDef,
		})
	}
	return out, nil
}

func exprString(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.Ident:
		return t.Name
	case *ast.SelectorExpr:
		return exprString(t.X) + "." + t.Sel.Name
	case *ast.ArrayType:
		return "[]" + exprString(t.Elt)
	default:
		return fmt.Sprintf("%T", e)
	}
}

// checkEnv holds a Deployment to roomhook's Config: every setting is set exactly once (so the
// chart maps all of them), no ROOMHOOK_* variable is set that roomhook does not read (a stale
// or misspelt name), and every literal value parses as the field's type the way envconfig will
// parse it at start.
func checkEnv(d *appsv1.Deployment, settings []setting) []string {
	var p problems
	name := "Deployment " + d.Name
	if len(d.Spec.Template.Spec.Containers) == 0 {
		return nil
	}
	env := d.Spec.Template.Spec.Containers[0].Env
	bySetting := map[string]setting{}
	for _, s := range settings {
		bySetting[s.env] = s
	}
	count := map[string]int{}
	for _, e := range env {
		if !strings.HasPrefix(e.Name, envPrefix) {
			continue
		}
		count[e.Name]++
		s, ok := bySetting[e.Name]
		if !ok {
			p.addf("%s: sets %s, which roomhook's Config does not read", name, e.Name)
			continue
		}
		if e.ValueFrom != nil {
			continue
		}
		if err := parseAs(s, e.Value); err != nil {
			p.addf("%s: %s=%q: %v", name, e.Name, e.Value, err)
		}
	}
	for _, s := range settings {
		if count[s.env] == 0 {
			p.addf("%s: does not set %s (every setting of internal/server/config.go must be mapped from values)", name, s.env)
		}
	}
	return p
}

// errEmptyOverridesDefault: envconfig uses a set-but-empty variable as the value, so an empty
// string would replace the default instead of falling back to it.
var errEmptyOverridesDefault = errors.New("empty, which replaces the default instead of using it")

// parseAs parses value as envconfig would parse it into the setting's field.
func parseAs(s setting, value string) error {
	if value == "" {
		if s.hasDefault && s.defaultVal != "" {
			return fmt.Errorf("%w %q", errEmptyOverridesDefault, s.defaultVal)
		}
		if s.goType == "string" || s.goType == "[]string" {
			return nil
		}
	}
	var err error
	switch s.goType {
	case "string":
	case "[]string":
		for _, part := range strings.Split(value, ",") {
			if strings.TrimSpace(part) == "" {
				err = errors.New("empty element in comma-separated list")
			}
		}
	case "int":
		_, err = strconv.Atoi(value)
	case "bool":
		_, err = strconv.ParseBool(value)
	case "float64":
		_, err = strconv.ParseFloat(value, 64)
	case "time.Duration":
		_, err = time.ParseDuration(value)
	default:
		err = fmt.Errorf("chartcheck does not know how envconfig parses %s", s.goType)
	}
	if err != nil {
		return fmt.Errorf("not a valid %s: %w", s.goType, err)
	}
	return nil
}
