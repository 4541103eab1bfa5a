package server

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// DefaultConfig returns the settings with nothing set: every field at the default of its tag,
// which is the one definition of each default. Unlike LoadConfig it does not read the
// environment, so that tests can start from the defaults side by side.
func DefaultConfig() (Config, error) {
	var c Config
	v := reflect.ValueOf(&c).Elem()
	for i := range v.NumField() {
		def, ok := v.Type().Field(i).Tag.Lookup("default")
		if !ok {
			continue
		}
		if err := setDefault(v.Field(i), def); err != nil {
			// Only a broken tag gets here; TestDefaultConfigIsLoadConfigsDefaults catches it.
			return c, fmt.Errorf("configuration: default of %s: %w", v.Type().Field(i).Name, err)
		}
	}
	return c, nil
}

// setDefault parses def into f the way envconfig parses a variable, for the kinds Config uses.
func setDefault(f reflect.Value, def string) error {
	switch {
	case f.Type() == reflect.TypeFor[time.Duration]():
		d, err := time.ParseDuration(def)
		f.SetInt(int64(d))
		return err
	case f.Kind() == reflect.String:
		f.SetString(def)
	case f.Kind() == reflect.Int:
		n, err := strconv.ParseInt(def, 0, 64)
		f.SetInt(n)
		return err
	case f.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(def)
		f.SetBool(b)
		return err
	case f.Kind() == reflect.Float64:
		x, err := strconv.ParseFloat(def, 64)
		f.SetFloat(x)
		return err
	case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
		f.Set(reflect.ValueOf(strings.Split(def, ",")))
	default:
		return fmt.Errorf("kind %s has no default parser", f.Kind())
	}
	return nil
}
