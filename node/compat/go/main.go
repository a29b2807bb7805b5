// Command harness drives the real nacos-sdk-go/v2 naming and config clients
// against a Cairn (Nacos-compatible) server. The Rust test orchestrator parses
// its stdout line by line; see README.md for the contract.
package main

import (
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/clients"
	"github.com/nacos-group/nacos-sdk-go/v2/clients/config_client"
	"github.com/nacos-group/nacos-sdk-go/v2/clients/naming_client"
	"github.com/nacos-group/nacos-sdk-go/v2/common/constant"
	nacoslog "github.com/nacos-group/nacos-sdk-go/v2/common/logger"
	"github.com/nacos-group/nacos-sdk-go/v2/model"
	"github.com/nacos-group/nacos-sdk-go/v2/vo"
	"go.uber.org/zap"
)

const (
	group          = "DEFAULT_GROUP"
	overallTimeout = 60 * time.Second
	pushWait       = 15 * time.Second
	holdCap        = 300 * time.Second
)

var (
	outMu   sync.Mutex
	tempDir string
)

// emit writes one line to stdout. os.Stdout is unbuffered, so every line is
// flushed as soon as it is written.
func emit(format string, args ...interface{}) {
	outMu.Lock()
	defer outMu.Unlock()
	writeLine(format, args...)
}

func writeLine(format string, args ...interface{}) {
	fmt.Fprintf(os.Stdout, format+"\n", args...)
	_ = os.Stdout.Sync()
}

func cleanup() {
	// SDK goroutines may still log while the process exits; point the SDK
	// logger at a no-op sink first so removing its log dir causes no noise.
	nacoslog.SetLogger(&nacoslog.NacosLogger{SugaredLogger: zap.NewNop().Sugar()})
	if tempDir != "" {
		_ = os.RemoveAll(tempDir)
	}
}

// exit prints an optional final line and exits. It takes the output lock and
// never releases it, so a racing watchdog cannot print a second final line.
func exit(code int, format string, args ...interface{}) {
	outMu.Lock()
	if format != "" {
		writeLine(format, args...)
	}
	cleanup()
	os.Exit(code)
}

func fail(format string, args ...interface{}) {
	exit(1, "FAIL "+format, args...)
}

func succeed() {
	exit(0, "")
}

// ---------------------------------------------------------------------------
// client construction

func serverAddr() (string, uint64) {
	addr := os.Getenv("CAIRN_SERVER")
	if addr == "" {
		addr = "127.0.0.1:8848"
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		fail("bad CAIRN_SERVER %q: %v", addr, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		fail("bad port in CAIRN_SERVER %q", addr)
	}
	return host, port
}

// clientParam creates a per-client temp dir (logs and cache) and returns the
// parameters both client kinds share; extra adds the kind-specific options.
func clientParam(tag string, extra ...constant.ClientOption) vo.NacosClientParam {
	host, port := serverAddr()
	dir, err := os.MkdirTemp(tempDir, tag+"-")
	if err != nil {
		fail("mkdtemp: %v", err)
	}
	opts := []constant.ClientOption{
		constant.WithNamespaceId(os.Getenv("CAIRN_NAMESPACE")),
		constant.WithTimeoutMs(5000),
		constant.WithNotLoadCacheAtStart(true),
	}
	opts = append(opts, extra...)
	opts = append(opts,
		constant.WithLogDir(dir+string(os.PathSeparator)+"log"),
		constant.WithCacheDir(dir+string(os.PathSeparator)+"cache"),
		constant.WithLogLevel("warn"),
	)
	// gRPC port = HTTP port + 1000 (SDK default when GrpcPort is 0).
	sc := []constant.ServerConfig{*constant.NewServerConfig(host, port)}
	return vo.NacosClientParam{ClientConfig: constant.NewClientConfig(opts...), ServerConfigs: sc}
}

func newClient(tag string) naming_client.INamingClient {
	cli, err := clients.NewNamingClient(clientParam(tag, constant.WithUpdateCacheWhenEmpty(true)))
	if err != nil {
		fail("create naming client: %v", err)
	}
	return cli
}

// newConfigClient builds a config client. It connects lazily: the first
// request (or the listen loop, every 5 s) creates the gRPC connection.
func newConfigClient(tag string) config_client.IConfigClient {
	// On a failed query GetConfig would otherwise return the local cache file
	// and hide the error.
	cli, err := clients.NewConfigClient(clientParam(tag, constant.WithDisableUseSnapShot(true)))
	if err != nil {
		fail("create config client: %v", err)
	}
	return cli
}

// closeClient closes a naming or config client, giving up after 3 s.
func closeClient(cli interface{ CloseClient() }) {
	done := make(chan struct{})
	go func() {
		cli.CloseClient()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
	}
}

// ---------------------------------------------------------------------------
// push recording

type recorder struct {
	mu     sync.Mutex
	lists  [][]model.Instance
	notify chan struct{}
}

func newRecorder() *recorder {
	return &recorder{notify: make(chan struct{}, 1)}
}

// signal wakes a waiter on ch (capacity 1) without blocking; a wake-up
// already pending is enough.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (r *recorder) callback(instances []model.Instance, err error) {
	cp := make([]model.Instance, len(instances))
	copy(cp, instances)
	r.mu.Lock()
	r.lists = append(r.lists, cp)
	r.mu.Unlock()
	signal(r.notify)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.lists)
}

// waitFor blocks until a list recorded at index >= from satisfies pred, or
// the timeout elapses. It returns the index after the matching list.
func (r *recorder) waitFor(from int, timeout time.Duration, pred func([]model.Instance) bool) (int, bool) {
	deadline := time.After(timeout)
	next := from
	for {
		r.mu.Lock()
		for ; next < len(r.lists); next++ {
			if pred(r.lists[next]) {
				r.mu.Unlock()
				return next + 1, true
			}
		}
		r.mu.Unlock()
		select {
		case <-r.notify:
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			return next, false
		}
	}
}

func (r *recorder) describe() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	parts := make([]string, 0, len(r.lists))
	for _, l := range r.lists {
		parts = append(parts, describeList(l))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func describeList(l []model.Instance) string {
	s := make([]string, 0, len(l))
	for _, in := range l {
		s = append(s, fmt.Sprintf("%s:%d", in.Ip, in.Port))
	}
	sort.Strings(s)
	return "{" + strings.Join(s, ",") + "}"
}

func find(l []model.Instance, ip string, port uint64) *model.Instance {
	for i := range l {
		if l[i].Ip == ip && l[i].Port == port {
			return &l[i]
		}
	}
	return nil
}

func contains(ip string, port uint64) func([]model.Instance) bool {
	return func(l []model.Instance) bool { return find(l, ip, port) != nil }
}

func lacks(ip string, port uint64) func([]model.Instance) bool {
	return func(l []model.Instance) bool { return find(l, ip, port) == nil }
}

func subscribe(cli naming_client.INamingClient, service string, rec *recorder) {
	err := cli.Subscribe(&vo.SubscribeParam{
		ServiceName:       service,
		GroupName:         group,
		SubscribeCallback: rec.callback,
	})
	if err != nil {
		fail("subscribe: %v", err)
	}
}

func register(cli naming_client.INamingClient, service, ip string, port uint64, weight float64, md map[string]string) {
	ok, err := cli.RegisterInstance(vo.RegisterInstanceParam{
		Ip:          ip,
		Port:        port,
		Weight:      weight,
		Enable:      true,
		Healthy:     true,
		Metadata:    md,
		ClusterName: "DEFAULT",
		ServiceName: service,
		GroupName:   group,
		Ephemeral:   true,
	})
	if err != nil {
		fail("register: %v", err)
	}
	if !ok {
		fail("register: server answered unsuccessful")
	}
}

// ---------------------------------------------------------------------------
// modes

func scenario(service string) {
	const ip = "127.0.0.1"
	const port uint64 = 7002

	cli := newClient("main")
	rec := newRecorder()

	// 1. subscribe
	subscribe(cli, service, rec)

	// 2. register
	register(cli, service, ip, port, 2, map[string]string{"lang": "go"})

	// 3. push containing the instance
	if _, ok := rec.waitFor(0, pushWait, contains(ip, port)); !ok {
		fail("no push containing %s:%d within %s; pushes=%s", ip, port, pushWait, rec.describe())
	}
	emit("PUSH_ADD ok")

	// 4. direct query. The subscribed client would answer from its push
	// cache, so a fresh client (empty cache) is used: its SelectAllInstances
	// goes to the server (SubscribeServiceRequest) and returns the response.
	q := newClient("query")
	insts, err := q.SelectAllInstances(vo.SelectAllInstancesParam{ServiceName: service, GroupName: group})
	closeClient(q)
	if err != nil {
		fail("list: %v", err)
	}
	in := find(insts, ip, port)
	if in == nil {
		fail("list lacks %s:%d: %s", ip, port, describeList(insts))
	}
	if in.Metadata["lang"] != "go" {
		fail("list: metadata lang=%q want \"go\" (metadata=%v)", in.Metadata["lang"], in.Metadata)
	}
	if in.Weight != 2 {
		fail("list: weight=%v want 2", in.Weight)
	}
	emit("LIST ok")

	// 5. service list
	sl, err := cli.GetAllServicesInfo(vo.GetAllServiceInfoParam{
		NameSpace: "",
		GroupName: group,
		PageNo:    1,
		PageSize:  100,
	})
	if err != nil {
		fail("service list: %v", err)
	}
	found := false
	for _, d := range sl.Doms {
		if d == service {
			found = true
			break
		}
	}
	if !found {
		fail("service list lacks %q: count=%d doms=%v", service, sl.Count, sl.Doms)
	}
	emit("SERVICE_LIST ok")

	// 6. deregister, then a push lacking the instance
	from := rec.count()
	ok, err := cli.DeregisterInstance(vo.DeregisterInstanceParam{
		Ip:          ip,
		Port:        port,
		Cluster:     "DEFAULT",
		ServiceName: service,
		GroupName:   group,
		Ephemeral:   true, // false would route to HTTP DELETE /nacos/v1/ns/instance
	})
	if err != nil {
		fail("deregister: %v", err)
	}
	if !ok {
		fail("deregister: server answered unsuccessful")
	}
	if _, ok := rec.waitFor(from, pushWait, lacks(ip, port)); !ok {
		fail("no push lacking %s:%d within %s after deregister; pushes=%s", ip, port, pushWait, rec.describe())
	}
	emit("PUSH_REMOVE ok")

	// 7. done
	emit("SCENARIO OK")
	closeClient(cli)
	succeed()
}

func hold(service, ip string, port uint64) {
	cli := newClient("hold")
	register(cli, service, ip, port, 1, nil)
	emit("REGISTERED")
	disarmTimeout() // the 60 s limit covers reaching REGISTERED; then block
	time.Sleep(holdCap)
	emit("HOLD_EXPIRED")
	closeClient(cli)
	succeed()
}

func watch(service, ip string, port uint64) {
	cli := newClient("watch")
	rec := newRecorder()
	subscribe(cli, service, rec)
	remaining := func() time.Duration { return time.Until(deadline) }
	next, ok := rec.waitFor(0, remaining(), contains(ip, port))
	if !ok {
		fail("timeout")
	}
	emit("SEEN")
	if _, ok := rec.waitFor(next, remaining(), lacks(ip, port)); !ok {
		fail("timeout")
	}
	emit("GONE")
	closeClient(cli)
	succeed()
}

// ---------------------------------------------------------------------------
// config modes

// oneLine escapes line breaks so a content fits on one output line.
func oneLine(s string) string {
	return strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(s)
}

// contents records every OnChange delivery in order.
type contents struct {
	mu     sync.Mutex
	list   []string
	notify chan struct{}
}

func newContents() *contents {
	return &contents{notify: make(chan struct{}, 1)}
}

func (c *contents) onChange(namespace, group, dataId, data string) {
	fmt.Fprintf(os.Stderr, "[harness] config notify %s/%s/%s %q\n", namespace, group, dataId, data)
	c.mu.Lock()
	c.list = append(c.list, data)
	c.mu.Unlock()
	signal(c.notify)
}

// waitFor blocks until an entry at index >= from equals want, or the timeout
// elapses; each entry from `from` on is passed to seen (if not nil) once.
// It returns the index after the last entry looked at.
func (c *contents) waitFor(from int, timeout time.Duration, want string, seen func(string)) (int, bool) {
	deadline := time.After(timeout)
	next := from
	for {
		c.mu.Lock()
		pending := append([]string(nil), c.list[next:]...)
		c.mu.Unlock()
		for _, v := range pending {
			next++
			if seen != nil {
				seen(v)
			}
			if v == want {
				return next, true
			}
		}
		select {
		case <-c.notify:
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			return next, false
		}
	}
}

// getConfig returns the content and whether the config exists. The SDK turns
// errorCode 300 (not found) into ("", nil); every other failure is an error
// (snapshots are disabled, so no cache file can stand in for the server).
func getConfig(cli config_client.IConfigClient, dataId, group string) (string, bool, error) {
	content, err := cli.GetConfig(vo.ConfigParam{DataId: dataId, Group: group})
	if err != nil {
		return "", false, err
	}
	return content, content != "", nil
}

// readUntil reads until the content is want ("" = absent), for up to 3 s.
// Reads are 300 ms apart: the SDK allows 5 queries per second per config
// (listener refreshes included) and fails the rest ("ConfigQueryRequest is limited").
func readUntil(cli config_client.IConfigClient, step, dataId, group, want string) {
	deadline := time.Now().Add(3 * time.Second)
	for tries := 1; ; tries++ {
		content, _, err := getConfig(cli, dataId, group)
		if err != nil && !strings.Contains(err.Error(), "limited") {
			fail("%s: GetConfig: %v", step, err)
		}
		if err == nil && content == want {
			if tries > 1 {
				fmt.Fprintf(os.Stderr, "[harness] %s: read the expected value after %d reads\n", step, tries)
			}
			return
		}
		if time.Now().After(deadline) {
			fail("%s: got %q (err %v), want %q (\"\" = absent) after %d reads", step, content, err, want, tries)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func publish(cli config_client.IConfigClient, step, dataId, group, content string) {
	ok, err := cli.PublishConfig(vo.ConfigParam{DataId: dataId, Group: group, Content: content})
	if err != nil {
		fail("%s: PublishConfig: %v", step, err)
	}
	if !ok {
		fail("%s: PublishConfig returned false", step)
	}
}

func listen(cli config_client.IConfigClient, dataId, group string, rec *contents) {
	err := cli.ListenConfig(vo.ConfigParam{DataId: dataId, Group: group, OnChange: rec.onChange})
	if err != nil {
		fail("ListenConfig: %v", err)
	}
}

func configScenario(dataId, group string) {
	cli := newConfigClient("config")
	if content, exists, err := getConfig(cli, dataId, group); err != nil {
		fail("get_absent: GetConfig: %v", err)
	} else if exists {
		fail("get_absent: the config exists with content %q", content)
	}
	emit("GET_ABSENT ok")

	rec := newContents()
	// ListenConfig only records the key; the listen loop sends the
	// ConfigBatchListenRequest on its next round (at most 5 s away).
	listen(cli, dataId, group, rec)

	publish(cli, "publish", dataId, group, "v1-go")
	emit("PUBLISH ok")

	readUntil(cli, "get", dataId, group, "v1-go")
	emit("GET ok")

	// Seeing v1 proves the listen round happened (md5 compared, key in sync);
	// after that only a ConfigChangeNotifyRequest makes the SDK look again, so
	// v2 must come by server push.
	next, ok := rec.waitFor(0, pushWait, "v1-go", nil)
	if !ok {
		fail("listen: the listener did not receive v1-go within %s", pushWait)
	}
	publish(cli, "listen", dataId, group, "v2-go")
	if _, ok := rec.waitFor(next, pushWait, "v2-go", nil); !ok {
		fail("listen: the listener did not receive v2-go within %s", pushWait)
	}
	emit("LISTEN ok")

	ok, err := cli.DeleteConfig(vo.ConfigParam{DataId: dataId, Group: group})
	if err != nil {
		fail("remove: DeleteConfig: %v", err)
	}
	if !ok {
		fail("remove: DeleteConfig returned false")
	}
	emit("REMOVE ok")

	readUntil(cli, "get_removed", dataId, group, "")
	emit("GET_REMOVED ok")

	emit("CONFIG OK")
	closeClient(cli)
	succeed()
}

func configListen(dataId, group, expected string) {
	cli := newConfigClient("listen")
	rec := newContents()
	listen(cli, dataId, group, rec)
	// The first request opens the gRPC connection; its "connected" event rings
	// the listen loop, which then sends ConfigBatchListenRequest for the key
	// recorded above at once instead of on the 5 s timer.
	if _, _, err := getConfig(cli, dataId, group); err != nil {
		fail("GetConfig (to connect): %v", err)
	}
	time.Sleep(time.Second)
	emit("LISTENING")
	if _, ok := rec.waitFor(0, time.Until(deadline), expected, func(v string) { emit("GOT %s", oneLine(v)) }); !ok {
		fail("timeout")
	}
	closeClient(cli)
	succeed()
}

func configPublish(dataId, group, content string) {
	cli := newConfigClient("publish")
	publish(cli, "publish", dataId, group, content)
	emit("PUBLISHED")
	closeClient(cli)
	succeed()
}

func configGet(dataId, group string) {
	cli := newConfigClient("get")
	content, exists, err := getConfig(cli, dataId, group)
	if err != nil {
		fail("GetConfig: %v", err)
	}
	if exists {
		emit("VALUE %s", oneLine(content))
	} else {
		emit("ABSENT")
	}
	closeClient(cli)
	succeed()
}

// ---------------------------------------------------------------------------
// main

var (
	deadline time.Time
	timerMu  sync.Mutex
	watchdog *time.Timer
)

func armTimeout() {
	deadline = time.Now().Add(overallTimeout)
	timerMu.Lock()
	watchdog = time.AfterFunc(overallTimeout, func() { fail("timeout") })
	timerMu.Unlock()
}

func disarmTimeout() {
	timerMu.Lock()
	defer timerMu.Unlock()
	if watchdog != nil {
		watchdog.Stop()
	}
}

func usage() {
	fail("usage: harness scenario <service> | hold <service> <ip> <port> | watch <service> <ip> <port>" +
		" | config-scenario <dataId> <group> | config-listen <dataId> <group> <expected>" +
		" | config-publish <dataId> <group> <content> | config-get <dataId> <group>")
}

func parsePort(s string) uint64 {
	p, err := strconv.ParseUint(s, 10, 16)
	if err != nil || p == 0 {
		fail("bad port %q", s)
	}
	return p
}

func main() {
	armTimeout()
	var err error
	tempDir, err = os.MkdirTemp("", "cairn-go-harness-")
	if err != nil {
		fail("mkdtemp: %v", err)
	}
	args := os.Args[1:]
	if len(args) < 1 {
		usage()
	}
	switch args[0] {
	case "scenario":
		if len(args) != 2 {
			usage()
		}
		scenario(args[1])
	case "hold":
		if len(args) != 4 {
			usage()
		}
		hold(args[1], args[2], parsePort(args[3]))
	case "watch":
		if len(args) != 4 {
			usage()
		}
		watch(args[1], args[2], parsePort(args[3]))
	case "config-scenario":
		if len(args) != 3 {
			usage()
		}
		configScenario(args[1], args[2])
	case "config-listen":
		if len(args) != 4 {
			usage()
		}
		configListen(args[1], args[2], args[3])
	case "config-publish":
		if len(args) != 4 {
			usage()
		}
		configPublish(args[1], args[2], args[3])
	case "config-get":
		if len(args) != 3 {
			usage()
		}
		configGet(args[1], args[2])
	default:
		usage()
	}
}
