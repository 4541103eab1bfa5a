// Package sender makes the HTTP side of a delivery: one signed POST to one endpoint.
//
// A Sender, with its one connection pool, serves every endpoint; Send makes one attempt and
// says what its outcome means (an Attempt with its Verdict: delivered, retry, reject, gone or
// forbidden). RetrySchedule is when attempts happen, ROOMHOOK_RETRY_SCHEDULE and _JITTER in
// the form ParseRetrySchedule reads, DefaultRetrySchedule the contract's. Which delivery is
// attempted when, and what becomes of it, is the pipeline's business (package dispatcher).
package sender
