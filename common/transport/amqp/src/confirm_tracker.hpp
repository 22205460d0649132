// Publisher confirms, kept once for both publishers (the workers' QueueWorker and the publisher's
// JobChannel): what is still unconfirmed on the current connection, which publishes a confirm settles, and
// the bounded retry of a publish the broker nacked.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "amqp_connection.hpp"

namespace imgpipe::amqp {

// A publish the broker nacked is sent again this many times in all before its sender gives up on it.
inline constexpr int max_publish_attempts = 3;

// `Pending` is what its owner keeps per publish: it has `OutgoingMessage message` and `int attempts`.
template <typename Pending>
class ConfirmTracker {
 public:
  std::size_t size() const { return unconfirmed_.size(); }
  bool empty() const { return unconfirmed_.empty(); }

  // Publishes `pending.message` on `connection` and waits for its confirm.
  void publish(Connection& connection, Pending pending) {
    const auto sequence = connection.publish(pending.message);
    unconfirmed_.emplace(sequence, std::move(pending));
  }

  // Takes out the publishes a confirm settles: the one named, or with `multiple` every one up to it.
  std::vector<Pending> settle(const Confirm& confirm) {
    const auto first = confirm.multiple ? unconfirmed_.begin() : unconfirmed_.find(confirm.sequence);
    const auto last = confirm.multiple ? unconfirmed_.upper_bound(confirm.sequence)
                                       : (first == unconfirmed_.end() ? first : std::next(first));
    std::vector<Pending> settled;
    for (auto it = first; it != last;) {
      settled.push_back(std::move(it->second));
      it = unconfirmed_.erase(it);
    }
    return settled;
  }

  // A nacked publish goes out again unless it has had its max_publish_attempts; false when it has.
  bool retry_nacked(Connection& connection, Pending& pending, const LogFn& log) {
    if (pending.attempts >= max_publish_attempts) return false;
    if (log)
      log("warn", "broker nacked a publish to " + pending.message.routing_key + "; publishing it again");
    ++pending.attempts;
    publish(connection, std::move(pending));
    return true;
  }

  // After a reconnect: every unconfirmed publish again, under the new connection's sequence numbers. Until
  // that succeeds the old entries stay, so a failure half-way loses nothing.
  void replay(Connection& connection) {
    std::map<std::uint64_t, Pending> replayed;
    for (const auto& [sequence, pending] : unconfirmed_)
      replayed.emplace(connection.publish(pending.message), pending);
    unconfirmed_ = std::move(replayed);
  }

 private:
  std::map<std::uint64_t, Pending> unconfirmed_;  // publish sequence on the current connection -> publish
};

}  // namespace imgpipe::amqp
