// Package receiver is a webhook endpoint for trying out, testing and benchmarking roomhook:
// it verifies every request the way a careful receiver should (the LiveKit/plugNmeet JWT with
// its body hash, and Standard Webhooks signatures when secrets are given), refuses what fails
// with 401, and keeps count of what it saw: requests, verified and rejected ones (with the
// reason), duplicates, and events that arrived out of order for their room, judged by the
// rh-<run>-<room>-<seq> ids the traffic package writes. It can inject latency and failures so
// the dispatcher's retries and isolation can be watched.
package receiver
