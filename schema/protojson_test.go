package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/roomhook/roomhook/schema/roomhookv1"
)

// referenceProtoJSON is Go's protojson with proto names, compacted by
// encoding/json: the bytes appendProtoJSON must reproduce.
func referenceProtoJSON(m proto.Message) ([]byte, error) {
	raw, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Compact(&out, raw); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// TestProtoJSONMatchesProtojson fills messages with random values
// (edge-case strings, floats, unknown enum numbers, maps with every key kind,
// well-known types) and requires byte equality with protojson.
func TestProtoJSONMatchesProtojson(t *testing.T) {
	tests := []struct {
		name       string
		newMessage func() protoreflect.Message
	}{
		// Events with LiveKit's participant and track inside.
		{"roomhook.v1.Event", func() protoreflect.Message { return (&roomhookv1.Event{}).ProtoReflect() }},
		// Integer map keys and google.protobuf.Timestamp fields.
		{"livekit.RTPStats", func() protoreflect.Message { return (&livekit.RTPStats{}).ProtoReflect() }},
		// Maps keyed by every key kind.
		{"maps", newMapsMessage(t)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			var compared, refused int
			for i := range 3000 {
				m := tt.newMessage()
				fillRandom(r, m, 0)
				want, wantErr := referenceProtoJSON(m.Interface())
				got, gotErr := appendProtoJSON(nil, m)
				if (wantErr != nil) != (gotErr != nil) {
					t.Fatalf("message %d: protojson err %v, ours %v", i, wantErr, gotErr)
				}
				if wantErr != nil {
					refused++
					continue
				}
				compared++
				if !bytes.Equal(got, want) {
					t.Fatalf("message %d differs\n got: %s\nwant: %s", i, got, want)
				}
			}
			t.Logf("%d messages compared, %d refused by both", compared, refused)
		})
	}
}

// newMapsMessage returns a constructor of a dynamic message with one
// map<K, string> field for every map key kind protobuf allows.
func newMapsMessage(t *testing.T) func() protoreflect.Message {
	t.Helper()
	keyTypes := []descriptorpb.FieldDescriptorProto_Type{
		descriptorpb.FieldDescriptorProto_TYPE_BOOL, descriptorpb.FieldDescriptorProto_TYPE_STRING,
		descriptorpb.FieldDescriptorProto_TYPE_INT32, descriptorpb.FieldDescriptorProto_TYPE_INT64,
		descriptorpb.FieldDescriptorProto_TYPE_UINT32, descriptorpb.FieldDescriptorProto_TYPE_UINT64,
		descriptorpb.FieldDescriptorProto_TYPE_SINT32, descriptorpb.FieldDescriptorProto_TYPE_SINT64,
		descriptorpb.FieldDescriptorProto_TYPE_FIXED32, descriptorpb.FieldDescriptorProto_TYPE_FIXED64,
		descriptorpb.FieldDescriptorProto_TYPE_SFIXED32, descriptorpb.FieldDescriptorProto_TYPE_SFIXED64,
	}
	msg := &descriptorpb.DescriptorProto{Name: proto.String("Maps")}
	for i, kt := range keyTypes {
		entry := fmt.Sprintf("M%dEntry", i)
		msg.NestedType = append(msg.NestedType, &descriptorpb.DescriptorProto{
			Name: proto.String(entry),
			Field: []*descriptorpb.FieldDescriptorProto{
				{Name: proto.String("key"), Number: proto.Int32(1), Type: kt.Enum(), Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), JsonName: proto.String("key")},
				{Name: proto.String("value"), Number: proto.Int32(2), Type: descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum(), Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), JsonName: proto.String("value")},
			},
			Options: &descriptorpb.MessageOptions{MapEntry: proto.Bool(true)},
		})
		msg.Field = append(msg.Field, &descriptorpb.FieldDescriptorProto{
			Name: proto.String(fmt.Sprintf("m%d", i)), Number: proto.Int32(int32(i + 1)), JsonName: proto.String(fmt.Sprintf("m%d", i)),
			Label: descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum(), Type: descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum(),
			TypeName: proto.String(".roomhooktest.Maps." + entry),
		})
	}
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name: proto.String("roomhooktest/maps.proto"), Package: proto.String("roomhooktest"), Syntax: proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{msg},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	md := fd.Messages().Get(0)
	return func() protoreflect.Message { return dynamicpb.NewMessage(md) }
}

// TestProtoJSONHandsWellKnownTypesToProtojson covers the fallback path that
// no roomhook or LiveKit field reaches today.
func TestProtoJSONHandsWellKnownTypesToProtojson(t *testing.T) {
	ts := &timestamppb.Timestamp{Seconds: 1761815000, Nanos: 5000}
	got, err := appendProtoJSON([]byte("x"), ts.ProtoReflect())
	if err != nil {
		t.Fatal(err)
	}
	if want := `x"2025-10-30T09:03:20.000005Z"`; string(got) != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestProtoJSONRejectsInvalidUTF8(t *testing.T) {
	evt := &roomhookv1.Event{Participant: &livekit.ParticipantInfo{Attributes: map[string]string{"k\xff": "v"}}}
	if _, err := appendProtoJSON(nil, evt.ProtoReflect()); err == nil {
		t.Fatal("invalid UTF-8 map key was accepted")
	}
	if _, err := MarshalBody(&roomhookv1.Event{Room: &roomhookv1.NotifyEventRoom{Metadata: proto.String("a\xffb")}}, Fallback{ID: "x", CreatedAt: 1}); !errors.Is(err, ErrEncodeBody) {
		t.Fatalf("err = %v, want ErrEncodeBody", err)
	}
}

var randomStrings = []string{
	"", "a", "weekly-sync", "<b>Q&A</b>", "\u2028\u2029", "\x00\x01\x1f\x7f", "\"quoted\" \\ back",
	"\b\f\n\r\t", "é 🎥 日本", "\ufffd", `{"json":"inside"}`, "  spaced  ", "https://x.example/?a=1&b=<2>",
}

func randomFloat(r *rand.Rand) float64 {
	pool := []float64{0, math.Copysign(0, -1), 1, -1.5, 52.73, 1e-7, 1e-6, 9.99e-7, 1e20, 1e21, 1e22, -3.4e38,
		123456789.123, math.NaN(), math.Inf(1), math.Inf(-1), math.SmallestNonzeroFloat64, math.MaxFloat64, 0.1 + 0.2}
	if r.IntN(3) == 0 {
		return r.NormFloat64() * math.Pow(10, float64(r.IntN(40)-20))
	}
	return pool[r.IntN(len(pool))]
}

func randomScalar(r *rand.Rand, fd protoreflect.FieldDescriptor) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(r.IntN(2) == 0)
	case protoreflect.StringKind:
		if r.IntN(200) == 0 {
			return protoreflect.ValueOfString("bad \xff utf-8")
		}
		if r.IntN(4) == 0 {
			return protoreflect.ValueOfString(string(rune(r.IntN(0x10000))) + randomStrings[r.IntN(len(randomStrings))])
		}
		return protoreflect.ValueOfString(randomStrings[r.IntN(len(randomStrings))])
	case protoreflect.BytesKind:
		b := make([]byte, r.IntN(6))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return protoreflect.ValueOfBytes(b)
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(int32(r.Uint32()))
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(r.Uint32())
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(int64(r.Uint64()))
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(r.Uint64())
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(float32(randomFloat(r)))
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(randomFloat(r))
	case protoreflect.EnumKind:
		values := fd.Enum().Values()
		if r.IntN(5) == 0 {
			return protoreflect.ValueOfEnum(protoreflect.EnumNumber(1000 + r.IntN(10))) // unknown to the descriptor
		}
		return protoreflect.ValueOfEnum(values.Get(r.IntN(values.Len())).Number())
	}
	panic("no random value for " + fd.Kind().String())
}

// fillRandom sets a random subset of m's fields, recursing into messages.
func fillRandom(r *rand.Rand, m protoreflect.Message, depth int) {
	if ts, ok := m.Interface().(*timestamppb.Timestamp); ok {
		// Mostly valid, so that protojson accepts them; now and then not.
		ts.Seconds, ts.Nanos = r.Int64N(1e10), r.Int32N(1e9)
		if r.IntN(20) == 0 {
			ts.Seconds = -1e12
		}
		return
	}
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if r.IntN(3) == 0 {
			continue
		}
		switch {
		case fd.IsMap():
			mp := m.Mutable(fd).Map()
			for range r.IntN(4) {
				key := randomScalar(r, fd.MapKey()).MapKey()
				if fd.MapValue().Message() != nil {
					v := mp.NewValue()
					fillRandom(r, v.Message(), depth+1)
					mp.Set(key, v)
				} else {
					mp.Set(key, randomScalar(r, fd.MapValue()))
				}
			}
		case fd.IsList():
			l := m.Mutable(fd).List()
			for range r.IntN(4) {
				if fd.Message() != nil {
					v := l.NewElement()
					if depth < 4 {
						fillRandom(r, v.Message(), depth+1)
					}
					l.Append(v)
				} else {
					l.Append(randomScalar(r, fd))
				}
			}
		case fd.Message() != nil:
			if depth < 4 {
				fillRandom(r, m.Mutable(fd).Message(), depth+1)
			}
		default:
			m.Set(fd, randomScalar(r, fd))
		}
	}
}
