// Package subscriber is roomhook's JetStream side: it provisions the streams and key-value
// buckets roomhook needs, decides which replica owns which unit of work (the partitions)
// through leases shared by all replicas, and pulls messages while keeping the ones a
// replica holds alive until they are settled or handed back.
//
// Its key-value loops are the ones every package uses on roomhook's buckets: FollowKV follows
// a bucket, ReadKV reads its current values, UpdateJSON changes one JSON record with a
// compare-and-set.
package subscriber
