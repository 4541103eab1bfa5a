//go:build tools

// Package main's deps.go pins modules that later code imports, so go mod tidy keeps them.
package main

import (
	_ "github.com/golang-jwt/jwt/v5"
	_ "github.com/google/uuid"
	_ "github.com/kelseyhightower/envconfig"
	_ "github.com/livekit/protocol/auth"
	_ "github.com/livekit/protocol/livekit"
	_ "github.com/livekit/protocol/webhook"
	_ "github.com/nats-io/nats-server/v2/server"
	_ "github.com/nats-io/nats.go/jetstream"
	_ "github.com/nats-io/nats.go/micro"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "google.golang.org/protobuf/proto"
	_ "gopkg.in/yaml.v3"
)
