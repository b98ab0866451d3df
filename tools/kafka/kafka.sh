#!/usr/bin/env bash
# Single-node Apache Kafka (KRaft, broker+controller) on loopback, from Maven
# Central jars on the machine's JDK. No Docker needed.
#
#   tools/kafka/kafka.sh install   resolve the jars into the cache (idempotent)
#   tools/kafka/kafka.sh start     install, format storage once, start, wait until ready
#   tools/kafka/kafka.sh stop      SIGTERM, then SIGKILL after a grace period
#   tools/kafka/kafka.sh status    exit 0 when running and accepting connections
#   tools/kafka/kafka.sh logs      print the path of the broker log
#
# Environment (all optional):
#   KAFKA_VERSION        pinned in pom.xml (kafka.version); must match it
#   SIGNALBOX_CACHE      jar cache, default ~/.cache/signalbox (outside the repo)
#   KAFKA_HOME_DIR       data, config, log and pid, default <repo>/.run/kafka
#   KAFKA_PORT           client port, default 9092 (controller: KAFKA_PORT+1)
#   KAFKA_HEAP           JVM heap, default 768m
#   KAFKA_SASL_PORT      when set, a second client listener on that port speaking
#                        SASL_PLAINTEXT with mechanisms PLAIN and SCRAM-SHA-256, for one user:
#   KAFKA_SASL_USER      its name, default signalbox
#   KAFKA_SASL_USER_PASSWORD  its password, default signalbox-secret
#                        (the SCRAM credential is written when storage is formatted, so a
#                        data dir formatted without KAFKA_SASL_PORT has PLAIN only)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../lib/daemon.sh
source "$here/../lib/daemon.sh"  # repo, cache, log, running, port_open, daemon_*
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")"
libs="$cache/kafka-$version/libs"
home="${KAFKA_HOME_DIR:-$repo/.run/kafka}"
port="${KAFKA_PORT:-9092}"
cport="$((port + 1))"
heap="${KAFKA_HEAP:-768m}"
sasl_port="${KAFKA_SASL_PORT:-}"
sasl_user="${KAFKA_SASL_USER:-signalbox}"
sasl_password="${KAFKA_SASL_USER_PASSWORD:-signalbox-secret}"
pidfile="$home/kafka.pid"
logfile="$home/logs/server.log"

install() {
  if [[ -f "$libs/.complete" ]]; then return 0; fi
  log "resolving Apache Kafka $version from Maven Central into $libs"
  mkdir -p "$libs"
  mvn -q -B -Dstyle.color=never -f "$here/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$libs" >&2
  touch "$libs/.complete"
}

java_cmd() {
  java -Xms128m -Xmx"$heap" -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$home/config/log4j2.properties" \
    -Dkafka.logs.dir="$home/logs" -cp "$libs/*" "$@"
}

sasl_config() {
  cat <<CONF
# SASL_PLAINTEXT listener (KAFKA_SASL_PORT): one user, PLAIN and SCRAM-SHA-256.
listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$sasl_user="$sasl_password";
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
CONF
}

write_config() {
  mkdir -p "$home/config" "$home/data" "$home/logs"
  local listeners="PLAINTEXT://127.0.0.1:$port" protocols="PLAINTEXT:PLAINTEXT"
  if [[ -n "$sasl_port" ]]; then
    listeners+=",SASL_PLAINTEXT://127.0.0.1:$sasl_port"
    protocols+=",SASL_PLAINTEXT:SASL_PLAINTEXT"
  fi
  cat > "$home/config/server.properties" <<CONF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=$listeners,CONTROLLER://127.0.0.1:$cport
advertised.listeners=$listeners
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$protocols,CONTROLLER:PLAINTEXT
$(if [[ -n "$sasl_port" ]]; then sasl_config; fi)
log.dirs=$home/data
# Topics are provisioned by signalbox itself (signalbox topics apply).
auto.create.topics.enable=false
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# A single local node: do not hold the first rebalance back.
group.initial.rebalance.delay.ms=0
log.retention.hours=168
log.segment.bytes=67108864
CONF
  cat > "$home/config/log4j2.properties" <<CONF
status = warn
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = $logfile
appender.file.filePattern = $home/logs/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 50MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
CONF
}

format_storage() {
  if [[ -f "$home/data/meta.properties" ]]; then return 0; fi
  local cluster_id
  cluster_id="$(java_cmd kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)"
  local scram=()
  if [[ -n "$sasl_port" ]]; then
    scram=(--add-scram "SCRAM-SHA-256=[name=$sasl_user,password=$sasl_password]")
  fi
  log "formatting KRaft storage (cluster $cluster_id)"
  java_cmd kafka.tools.StorageTool format -t "$cluster_id" ${scram[@]+"${scram[@]}"} \
    -c "$home/config/server.properties" >"$home/logs/format.log" 2>&1 \
    || { cat "$home/logs/format.log" >&2; exit 1; }
}

# Both client listeners accept connections.
listening() { port_open "$port" && { [[ -z "$sasl_port" ]] || port_open "$sasl_port"; }; }

start() {
  if running && port_open "$port"; then
    log "already running (pid $(cat "$pidfile")) on 127.0.0.1:$port"
    return 0
  fi
  if port_open "$port"; then
    log "port $port is taken by another process; set KAFKA_PORT"; exit 1
  fi
  install
  write_config
  format_storage
  log "starting Apache Kafka $version on 127.0.0.1:$port (log: $logfile)"
  daemon_spawn "$home/logs/stdout.log" bash -c "$(declare -f java_cmd); home='$home' \
    heap='$heap' libs='$libs' java_cmd kafka.Kafka '$home/config/server.properties'"
  daemon_await "${KAFKA_START_TIMEOUT:-90}" "did not open $port $sasl_port" listening
  log "ready on 127.0.0.1:$port${sasl_port:+ (SASL_PLAINTEXT on 127.0.0.1:$sasl_port)}"
}

status() {
  if running && port_open "$port"; then
    echo "running pid=$(cat "$pidfile") bootstrap=127.0.0.1:$port version=$version"
  else
    echo "not running"; return 1
  fi
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) daemon_stop 30 ;;
  status) status ;;
  logs) echo "$logfile" ;;
  *) echo "usage: $0 {install|start|stop|status|logs}" >&2; exit 2 ;;
esac
