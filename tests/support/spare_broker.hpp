// More RabbitMQ nodes for the failover specs, beside the test broker that scripts/test started.
#pragma once

#include <cstddef>
#include <string>

#include "test_support.hpp"

namespace imgpipe::test {

// The test broker's control script (IMGPIPE_TEST_BROKER_CTL) with one verb, returning what it printed
// (e.g. "connections": one "NAME@host:port state" a line); fails the test when it fails.
std::string broker_ctl_output(const std::string& verb);

// Another RabbitMQ node: a throwaway single node of its own, started by the broker control script on a spare
// port and stopped (its folder removed) when the object dies. Separate nodes, not a cluster: what one holds
// the other never sees. Ports: IMGPIPE_TEST_SPARE_BROKER_PORTS ("P1,P2"), else the test broker's port + 32
// and + 64 (so the ports each node derives from its own stay clear of the others').
class SpareBroker {
 public:
  explicit SpareBroker(std::size_t index = 0);  // which spare port; starts the node
  ~SpareBroker();
  SpareBroker(const SpareBroker&) = delete;
  SpareBroker& operator=(const SpareBroker&) = delete;

  int port() const { return port_; }
  std::string node() const;  // "127.0.0.1:PORT"
  std::string url() const;   // amqp://guest:guest@127.0.0.1:PORT/
  // The control script's VERB on this node (start, stop, restart, kill, connections, ...); returns what it
  // printed and fails the test when it fails.
  std::string ctl(const std::string& verb);

 private:
  std::string command(const std::string& verb) const;

  int port_ = 0;
  TempDir dir_{"imgpipe-spare-broker"};
};

}  // namespace imgpipe::test
