package schema

import (
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// This file writes a message exactly as Go's protojson does with
// UseProtoNames, minus the random spaces it adds after commas, so that
// webhook bodies are byte-compatible with plugNmeet's while taking a fraction
// of protojson's time and allocations (protojson sorts and boxes every field
// of every message). Messages protojson treats specially (the well-known types
// of google.protobuf, proto2 extensions) are handed to protojson itself.
//
// FuzzDecodeEvent and TestProtoJSONMatchesProtojson compare the two encoders
// on arbitrary events; keep them passing when changing anything here.

// errInvalidUTF8 is what protojson refuses too: a string field that is not UTF-8.
var errInvalidUTF8 = errors.New("string field is not valid UTF-8")

// appendProtoJSON appends m as compact protojson with proto field names.
func appendProtoJSON(b []byte, m protoreflect.Message) ([]byte, error) {
	md := m.Descriptor()
	if md.FullName().Parent() == "google.protobuf" || md.ExtensionRanges().Len() > 0 {
		raw, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m.Interface())
		if err != nil {
			return b, err
		}
		return append(b, compactJSON(raw)...), nil
	}
	b = append(b, '{')
	fields := md.Fields()
	first := true
	for i := range fields.Len() {
		fd := fields.Get(i)
		if !m.Has(fd) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b, _ = appendJSONString(b, fd.TextName()) // descriptor names are ASCII identifiers
		b = append(b, ':')
		var err error
		switch v := m.Get(fd); {
		case fd.IsList():
			b, err = appendJSONList(b, v.List(), fd)
		case fd.IsMap():
			b, err = appendJSONMap(b, v.Map(), fd)
		default:
			b, err = appendJSONSingular(b, v, fd)
		}
		if err != nil {
			return b, fmt.Errorf("%s: %w", fd.FullName(), err)
		}
	}
	return append(b, '}'), nil
}

func appendJSONList(b []byte, list protoreflect.List, fd protoreflect.FieldDescriptor) ([]byte, error) {
	b = append(b, '[')
	for i := range list.Len() {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendJSONSingular(b, list.Get(i), fd); err != nil {
			return b, err
		}
	}
	return append(b, ']'), nil
}

// appendJSONMap writes the entries in protojson's key order: false before
// true, numbers ascending, strings by byte order.
func appendJSONMap(b []byte, mp protoreflect.Map, fd protoreflect.FieldDescriptor) ([]byte, error) {
	type entry struct {
		key   protoreflect.MapKey
		value protoreflect.Value
	}
	entries := make([]entry, 0, mp.Len())
	mp.Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
		entries = append(entries, entry{k, v})
		return true
	})
	switch fd.MapKey().Kind() {
	case protoreflect.StringKind:
		slices.SortFunc(entries, func(x, y entry) int { return cmp.Compare(x.key.String(), y.key.String()) })
	case protoreflect.BoolKind:
		slices.SortFunc(entries, func(x, y entry) int { return cmpBool(x.key.Bool(), y.key.Bool()) })
	case protoreflect.Uint32Kind, protoreflect.Uint64Kind, protoreflect.Fixed32Kind, protoreflect.Fixed64Kind:
		slices.SortFunc(entries, func(x, y entry) int { return cmp.Compare(x.key.Uint(), y.key.Uint()) })
	default:
		slices.SortFunc(entries, func(x, y entry) int { return cmp.Compare(x.key.Int(), y.key.Int()) })
	}
	b = append(b, '{')
	valueField := fd.MapValue()
	for i, e := range entries {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendJSONString(b, e.key.String()); err != nil {
			return b, err
		}
		b = append(b, ':')
		if b, err = appendJSONSingular(b, e.value, valueField); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

func cmpBool(x, y bool) int {
	switch {
	case x == y:
		return 0
	case y:
		return -1
	default:
		return 1
	}
}

func appendJSONSingular(b []byte, v protoreflect.Value, fd protoreflect.FieldDescriptor) ([]byte, error) {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return strconv.AppendBool(b, v.Bool()), nil
	case protoreflect.StringKind:
		return appendJSONString(b, v.String())
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return strconv.AppendInt(b, v.Int(), 10), nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return strconv.AppendUint(b, v.Uint(), 10), nil
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		// 64-bit integers are JSON strings: JavaScript numbers lose precision.
		b = append(b, '"')
		b = strconv.AppendInt(b, v.Int(), 10)
		return append(b, '"'), nil
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		b = append(b, '"')
		b = strconv.AppendUint(b, v.Uint(), 10)
		return append(b, '"'), nil
	case protoreflect.FloatKind:
		return appendJSONFloat(b, v.Float(), 32), nil
	case protoreflect.DoubleKind:
		return appendJSONFloat(b, v.Float(), 64), nil
	case protoreflect.BytesKind:
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, v.Bytes())
		return append(b, '"'), nil
	case protoreflect.EnumKind:
		if fd.Enum().FullName() == "google.protobuf.NullValue" {
			return append(b, "null"...), nil
		}
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			b = append(b, '"')
			b = append(b, ev.Name()...)
			return append(b, '"'), nil
		}
		return strconv.AppendInt(b, int64(v.Enum()), 10), nil
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return appendProtoJSON(b, v.Message())
	}
	return b, fmt.Errorf("%s has unknown kind %v", fd.FullName(), fd.Kind())
}

// appendJSONFloat writes NaN and infinities as strings, like protojson, and
// other numbers in encoding/json's form: shortest representation, exponent
// only below 1e-6 or from 1e21 on, and no leading zero in a negative exponent.
func appendJSONFloat(b []byte, f float64, bitSize int) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(b, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Infinity"`...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bitSize == 64 && (abs < 1e-6 || abs >= 1e21) ||
			bitSize == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	b = strconv.AppendFloat(b, f, format, -1, bitSize)
	if format == 'e' {
		// 1e-07 -> 1e-7
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendJSONString escapes only what protojson (and so plugNmeet) escapes:
// the quote, the backslash and control characters. No HTML escaping, no
// escaping of U+2028/U+2029. Invalid UTF-8 is an error, as in protojson.
func appendJSONString(b []byte, s string) ([]byte, error) {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				return b, errInvalidUTF8
			}
			i += size
			continue
		}
		if c >= ' ' && c != '"' && c != '\\' {
			i++
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			const hex = "0123456789abcdef"
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"'), nil
}
