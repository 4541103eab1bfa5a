package server

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// embeddedCredentialsName is the file in ROOMHOOK_DATA_DIR that holds the embedded server's
// user and password, readable by its owner only.
const embeddedCredentialsName = "nats-credentials.json"

// EmbeddedCredentials is the user the embedded development NATS server requires. Without one,
// any local process (another user's, a browser's request to a loopback port) could connect and,
// for example, purge the dead letters.
type EmbeddedCredentials struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// EmbeddedCredentialsFile is where the embedded server's credentials are kept in dataDir.
func EmbeddedCredentialsFile(dataDir string) string {
	return filepath.Join(dataDir, embeddedCredentialsName)
}

// ReadEmbeddedCredentials reads the credentials the embedded server of dataDir was started
// with; fs.ErrNotExist (errors.Is) when it never was.
func ReadEmbeddedCredentials(dataDir string) (EmbeddedCredentials, error) {
	var creds EmbeddedCredentials
	b, err := os.ReadFile(EmbeddedCredentialsFile(dataDir))
	if err != nil {
		return creds, fmt.Errorf("embedded NATS credentials: %w", err)
	}
	if err := json.Unmarshal(b, &creds); err != nil || creds.User == "" || creds.Password == "" {
		return EmbeddedCredentials{}, fmt.Errorf("embedded NATS credentials in %s: unreadable; delete the file to make new ones", EmbeddedCredentialsFile(dataDir))
	}
	return creds, nil
}

// embeddedCredentials returns the credentials kept in dataDir, making and keeping new ones on
// the first start. New ones are printed once on announce (the terminal of whoever started
// the development server), never logged.
func embeddedCredentials(dataDir string, announce io.Writer) (EmbeddedCredentials, error) {
	creds, err := ReadEmbeddedCredentials(dataDir)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return creds, err
	}
	secret := make([]byte, 24)
	_, _ = rand.Read(secret) // crypto/rand.Read never fails (Go 1.24+)
	creds = EmbeddedCredentials{User: "roomhook-dev", Password: hex.EncodeToString(secret)}
	b, err := json.MarshalIndent(creds, "", "  ")
	if err != nil {
		return creds, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return creds, fmt.Errorf("embedded NATS credentials: %w", err)
	}
	path := EmbeddedCredentialsFile(dataDir)
	// O_EXCL: two processes starting at once must not each think they made the file.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return ReadEmbeddedCredentials(dataDir)
	}
	if err != nil {
		return creds, fmt.Errorf("embedded NATS credentials: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return creds, fmt.Errorf("embedded NATS credentials: %w", err)
	}
	if err := f.Close(); err != nil {
		return creds, fmt.Errorf("embedded NATS credentials: %w", err)
	}
	// The password stays in the file (mode 0600): what goes to stderr ends up in logs.
	fmt.Fprintf(announce, "\nThe embedded NATS server requires a user: %s, with the password kept in %s.\n"+
		"roomhook's own subcommands read that file; other clients connect with nats://%s:<password>@<ROOMHOOK_EMBEDDED_LISTEN>.\n\n",
		creds.User, path, creds.User)
	return creds, nil
}
