// Package dashboard is roomhook's Grafana dashboard, built in Go with the Grafana Foundation
// SDK, and the tests that hold it and the alert rules of the Helm chart to the metrics a real
// roomhook exports.
//
// The generated JSON is committed twice: roomhook.json here, for import by hand, and
// charts/roomhook/dashboards/roomhook.json, which the chart ships in a ConfigMap for Grafana's
// dashboard sidecar. Regenerate both after changing a panel:
//
//	go generate ./dashboard
//
// TestCommittedJSONIsCurrent fails when either file differs from what Build produces.
package dashboard

//go:generate go run ./cmd/gen roomhook.json ../charts/roomhook/dashboards/roomhook.json
