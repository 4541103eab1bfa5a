package server

import (
	"io"
	"log/slog"
)

// NewLogger builds the process logger from ROOMHOOK_LOG_FORMAT and ROOMHOOK_LOG_LEVEL. A level
// Validate refuses logs at info.
func NewLogger(c Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		lvl = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
