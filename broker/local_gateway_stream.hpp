#pragma once
// The all-in-one's Events stream: the gateway and the broker in one process, without
// gRPC between them (docs/benchmarks.md#the-in-process-hand-off). The gateway's
// BrokerLink sees a stream like any other (common/broker_link.hpp); the broker sees a
// gateway like any other (GatewaySession, the same registry and system broadcasts).
// What is skipped is the carriage: no event is serialised, copied or parsed again, and
// no gRPC thread wakes up; the gateway gets the broker's own parsed ChannelEvent.
//
// Threads: everything the gateway sends is handled on the broker's Redis thread, in
// order, like the events themselves; the events of one Redis read go on together
// (one wake-up per gateway worker for them, as EventBatch does over gRPC). Nothing
// is queued past the end of that read, so there is no backlog to bound: a gateway
// that falls behind does so in its own workers' queues, as with gRPC.
#include <boost/asio/io_context.hpp>

#include "common/broker_link.hpp"

namespace sluice::broker {

class BrokerService;

// Opens streams into `service`'s broker, whose Redis thread runs `io`.
BrokerStreamOpener local_gateway_streams(BrokerService& service, boost::asio::io_context& io);

}  // namespace sluice::broker
