package config

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// URLSetting is a URL that may carry a password (database_url, redis_url): written either as
// a plain string or as a secret reference ({env: NAME} or {file: PATH}), so the password can
// live in a secret file. Every printed form is "[redacted]"; Load copies the resolved URL
// into Config.DatabaseURL / Config.RedisURL.
type URLSetting struct {
	Secret
	plain bool // written as a plain string
}

// PlainURL returns a URLSetting holding u as written inline.
func PlainURL(u string) URLSetting {
	return URLSetting{Secret: Secret{Value: u, content: strings.TrimSpace(u), resolved: true}, plain: true}
}

// UnmarshalYAML accepts a string or a mapping with exactly one of env, file or value.
func (u *URLSetting) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			*u = PlainURL("")
			return nil
		}
		*u = PlainURL(n.Value)
		return nil
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i].Value; k != "env" && k != "file" && k != "value" {
				return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: unknown key %s in a secret reference (env, file or value)", n.Content[i].Line, keyName(k))}}
			}
		}
		var s Secret
		if err := n.Decode(&s); err != nil {
			return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: expected a URL or a secret reference such as {file: PATH}", n.Line)}}
		}
		*u = URLSetting{Secret: s}
		return nil
	}
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: expected a URL or a secret reference such as {file: PATH}", n.Line)}}
}

// resolveURL resolves u and stores its content in dst; a failure is reported under path.
func resolveURL(p *[]string, path string, u *URLSetting, dir string, getenv func(string) string, dst *string) {
	if u.plain {
		*dst = u.content
		return
	}
	u.resolve(dir, getenv)
	switch {
	case u.sources() != 1:
		*p = append(*p, path+": a secret reference needs exactly one of env, file or value")
	case u.problem != "":
		*p = append(*p, path+": "+u.problem)
	default:
		*dst = u.content
	}
}

// envOverride is one BFF_* variable and the scalar setting it replaces.
type envOverride struct {
	env, key string
	field    reflect.Value
}

// overrides lists a BFF_* variable for every scalar setting of c: the key path upper-cased,
// dots and brackets made underscores (session.idle_timeout: BFF_SESSION_IDLE_TIMEOUT).
// Lists (tenants, cors.allowed_origins, trusted_proxies, session.keys) and secret
// references are not scalars and have none; database_url and redis_url do, as plain URLs.
func (c *Config) overrides() []envOverride {
	var out []envOverride
	var walk func(v reflect.Value, prefix string)
	walk = func(v reflect.Value, prefix string) {
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if tag == "" || tag == "-" {
				continue
			}
			key := prefix + tag
			fv := v.Field(i)
			switch {
			case f.Type == reflect.TypeFor[URLSetting]():
				out = append(out, envOverride{"BFF_" + strings.ToUpper(key), key, fv})
			case f.Type == reflect.TypeFor[Secret]():
			case f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[Duration]():
				walk(fv, key+".")
			case f.Type.Kind() == reflect.Slice:
			default:
				out = append(out, envOverride{"BFF_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_")), key, fv})
			}
		}
	}
	walk(reflect.ValueOf(c).Elem(), "")
	return out
}

// EnvOverrides returns the BFF_* variables that override a setting, sorted, each with the
// key it replaces: the list the README documents.
func EnvOverrides() map[string]string {
	c := defaults()
	m := map[string]string{}
	for _, o := range c.overrides() {
		m[o.env] = o.key
	}
	return m
}

// applyOverrides replaces each setting whose BFF_* variable is set and non-empty. A value
// that does not parse as the setting's type is a problem naming the variable (not quoting
// the value: it may be a URL with a password).
func (c *Config) applyOverrides(getenv func(string) string) []string {
	var problems []string
	os := c.overrides()
	sort.Slice(os, func(i, j int) bool { return os[i].env < os[j].env })
	for _, o := range os {
		v := getenv(o.env)
		if v == "" {
			continue
		}
		switch o.field.Interface().(type) {
		case URLSetting:
			o.field.Set(reflect.ValueOf(PlainURL(v)))
		case string:
			o.field.SetString(v)
		default:
			ptr := reflect.New(o.field.Type())
			if err := yaml.Unmarshal([]byte(v), ptr.Interface()); err != nil {
				problems = append(problems, fmt.Sprintf("%s (overrides %s): %s", o.env, o.key, overrideProblem(o.field.Type())))
				continue
			}
			o.field.Set(ptr.Elem())
		}
	}
	return problems
}

func overrideProblem(t reflect.Type) string {
	switch {
	case t == reflect.TypeFor[Duration]():
		return "must be a duration such as 30m or 2s"
	case t.Kind() == reflect.Bool || t == reflect.TypeFor[*bool]():
		return "must be true or false"
	case t.Kind() == reflect.Int:
		return "must be a whole number"
	}
	return "has the wrong type"
}
