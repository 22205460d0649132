# A local stand-in for the official rabbitmq:3.10-management image, for machines that cannot pull images
# (like the project's test machine). tests/docker/build-base-images builds it FROM the local debootstrapped
# debian:bookworm-slim and tags it rabbitmq:3.10-management, so docker-compose.yml runs unchanged.
# It is NOT the official image: it is Debian bookworm's rabbitmq-server (3.10.8, Erlang 25) with the
# management plugin enabled, and it implements only what imgpipe's compose file uses from the official one:
#   * RABBITMQ_DEFAULT_USER / RABBITMQ_DEFAULT_PASS create the only user (no guest),
#   * AMQP on 5672 and the management UI/API on 15672,
#   * data under /var/lib/rabbitmq (node name rabbit@<hostname>: give the service a fixed hostname),
#   * rabbitmq-diagnostics / rabbitmqctl on PATH for health checks.
FROM debian:bookworm-slim

RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends rabbitmq-server \
 && rm -rf /var/lib/apt/lists/* \
 && echo '[rabbitmq_management].' > /etc/rabbitmq/enabled_plugins \
 && install -d -o rabbitmq -g rabbitmq -m 0750 /var/lib/rabbitmq /var/log/rabbitmq \
 && chown rabbitmq:rabbitmq /etc/rabbitmq

COPY rabbitmq-entrypoint /usr/local/bin/rabbitmq-entrypoint

# /usr/sbin/rabbitmq-* are wrappers that refuse users other than root and rabbitmq; running as rabbitmq,
# the real scripts in /usr/lib/rabbitmq/bin come first.
ENV PATH=/usr/lib/rabbitmq/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/var/lib/rabbitmq \
    RABBITMQ_LOGS=- \
    LANG=C.UTF-8
USER rabbitmq
VOLUME /var/lib/rabbitmq
EXPOSE 5672 15672
ENTRYPOINT ["rabbitmq-entrypoint"]
CMD ["rabbitmq-server"]
