package cairn.compat;

import com.alibaba.nacos.api.NacosFactory;
import com.alibaba.nacos.api.PropertyKeyConst;
import com.alibaba.nacos.api.config.ConfigService;
import com.alibaba.nacos.api.config.listener.AbstractListener;
import com.alibaba.nacos.api.exception.NacosException;
import com.alibaba.nacos.api.naming.NamingFactory;
import com.alibaba.nacos.api.naming.NamingService;
import com.alibaba.nacos.api.naming.listener.Event;
import com.alibaba.nacos.api.naming.listener.EventListener;
import com.alibaba.nacos.api.naming.listener.NamingEvent;
import com.alibaba.nacos.api.naming.pojo.Instance;
import com.alibaba.nacos.api.naming.pojo.ListView;

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.lang.reflect.Field;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Properties;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Predicate;
import java.util.stream.Stream;

/**
 * Compatibility harness driving the official Nacos Java client against a Cairn server.
 *
 * <p>Protocol: every line on stdout is one event of the harness; everything else (client logs,
 * diagnostics) goes to stderr. Exit code 0 on success, 1 on failure after a {@code FAIL <reason>} line.
 *
 * <pre>
 *   scenario &lt;service&gt;
 *   hold     &lt;service&gt; &lt;ip&gt; &lt;port&gt;
 *   watch    &lt;service&gt; &lt;ip&gt; &lt;port&gt;
 *   config-scenario &lt;dataId&gt; &lt;group&gt;
 *   config-listen   &lt;dataId&gt; &lt;group&gt; &lt;expected&gt;
 *   config-publish  &lt;dataId&gt; &lt;group&gt; &lt;content&gt;
 *   config-get      &lt;dataId&gt; &lt;group&gt;
 * </pre>
 *
 * Environment: {@code CAIRN_SERVER} (host:httpPort, default 127.0.0.1:8848; gRPC is httpPort+1000),
 * {@code CAIRN_NAMESPACE} (default empty = public), {@code CAIRN_HARNESS_LOG} (client log level on stderr,
 * default warn).
 */
public final class Harness {

    private static final String GROUP = "DEFAULT_GROUP";

    private static final long OVERALL_TIMEOUT_MS = 60_000;

    private static final long HOLD_CAP_MS = 300_000;

    private static final long PUSH_WAIT_MS = 15_000;

    /** How long register/subscribe are retried while the gRPC connection is still being set up. */
    private static final long CONNECT_RETRY_MS = 10_000;

    /** How long a read is repeated until it shows the value just written or removed. */
    private static final long READ_YOUR_WRITE_MS = 3_000;

    /** Timeout passed to getConfig / the client's server query. */
    private static final long GET_TIMEOUT_MS = 5_000;

    private static final AtomicBoolean FINISHED = new AtomicBoolean(false);

    /** The real stdout; System.out is pointed at stderr so nothing else can write protocol lines. */
    private static PrintStream protocolOut;

    /** Name of the step in progress, for FAIL lines caused by unexpected exceptions. */
    private static volatile String step = "setup";

    private Harness() {
    }

    public static void main(String[] args) {
        protocolOut = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
        System.setOut(System.err);
        try {
            prepareEnvironment();
        } catch (Throwable t) {
            t.printStackTrace(System.err);
            fail("setup " + describe(t));
        }

        if (args.length < 1) {
            usage();
        }
        String mode = args[0];
        try {
            switch (mode) {
                case "scenario":
                    requireArgs(args, 2);
                    startWatchdog(OVERALL_TIMEOUT_MS);
                    scenario(args[1]);
                    break;
                case "hold":
                    requireArgs(args, 4);
                    startWatchdog(HOLD_CAP_MS);
                    hold(args[1], args[2], parsePort(args[3]));
                    break;
                case "watch":
                    requireArgs(args, 4);
                    startWatchdog(OVERALL_TIMEOUT_MS);
                    watch(args[1], args[2], parsePort(args[3]));
                    break;
                case "config-scenario":
                    requireArgs(args, 3);
                    startWatchdog(OVERALL_TIMEOUT_MS);
                    configScenario(args[1], args[2]);
                    break;
                case "config-listen":
                    requireArgs(args, 4);
                    startWatchdog(OVERALL_TIMEOUT_MS);
                    configListen(args[1], args[2], args[3]);
                    break;
                case "config-publish":
                    requireArgs(args, 4);
                    startWatchdog(OVERALL_TIMEOUT_MS);
                    configPublish(args[1], args[2], args[3]);
                    break;
                case "config-get":
                    requireArgs(args, 3);
                    startWatchdog(OVERALL_TIMEOUT_MS);
                    configGet(args[1], args[2]);
                    break;
                default:
                    usage();
            }
        } catch (Throwable t) {
            t.printStackTrace(System.err);
            fail(step + ": exception " + describe(t));
        }
    }

    // ------------------------------------------------------------------ modes

    private static void scenario(String service) throws Exception {
        BlockingQueue<List<Instance>> pushes = new LinkedBlockingQueue<>();
        NamingService naming = subscribedNamingService(service, pushes);

        Instance instance = new Instance();
        instance.setIp("127.0.0.1");
        instance.setPort(7001);
        instance.setClusterName("DEFAULT");
        instance.setWeight(2.0);
        Map<String, String> metadata = new HashMap<>();
        metadata.put("lang", "java");
        instance.setMetadata(metadata);
        instance.setEphemeral(true);
        step = "register";
        retrying("registerInstance", () -> naming.registerInstance(service, GROUP, instance));

        // 3. a push containing the instance
        if (awaitPush(pushes, list -> contains(list, "127.0.0.1", 7001), PUSH_WAIT_MS) == null) {
            fail("push_add: no push containing 127.0.0.1:7001 within " + PUSH_WAIT_MS + " ms");
        }
        emit("PUSH_ADD ok");

        // 4. direct query (subscribe=false)
        step = "list";
        List<Instance> all = naming.getAllInstances(service, GROUP, false);
        Instance found = find(all, "127.0.0.1", 7001);
        if (found == null) {
            fail("list: 127.0.0.1:7001 missing from getAllInstances " + summarize(all));
        }
        String lang = found.getMetadata() == null ? null : found.getMetadata().get("lang");
        if (!"java".equals(lang)) {
            fail("list: metadata lang=" + lang + " (want java), metadata=" + found.getMetadata());
        }
        if (Math.abs(found.getWeight() - 2.0) > 1e-9) {
            fail("list: weight=" + found.getWeight() + " (want 2.0)");
        }
        emit("LIST ok");

        // 5. service list
        step = "service_list";
        ListView<String> services = naming.getServicesOfServer(1, 100, GROUP);
        List<String> names = services == null ? null : services.getData();
        if (names == null || !names.contains(service)) {
            fail("service_list: " + service + " missing from getServicesOfServer data=" + names
                    + " count=" + (services == null ? "null" : services.getCount()));
        }
        emit("SERVICE_LIST ok");

        // 6. deregister, then a push lacking the instance. Pushes that arrived before the
        // deregistration are discarded so only a push caused by it can satisfy the check.
        step = "push_remove";
        List<List<Instance>> stale = new ArrayList<>();
        pushes.drainTo(stale);
        for (List<Instance> s : stale) {
            log("discarding push received before deregister: " + summarize(s));
        }
        retrying("deregisterInstance", () -> naming.deregisterInstance(service, GROUP, "127.0.0.1", 7001));
        if (awaitPush(pushes, list -> !contains(list, "127.0.0.1", 7001), PUSH_WAIT_MS) == null) {
            fail("push_remove: no push lacking 127.0.0.1:7001 within " + PUSH_WAIT_MS + " ms");
        }
        emit("PUSH_REMOVE ok");

        // 7. done
        step = "shutdown";
        emit("SCENARIO OK");
        shutdownQuietly(naming);
        finish(0, null);
    }

    private static void hold(String service, String ip, int port) throws Exception {
        step = "create_client";
        NamingService naming = createNamingService();
        Instance instance = new Instance();
        instance.setIp(ip);
        instance.setPort(port);
        instance.setClusterName("DEFAULT");
        instance.setEphemeral(true);
        step = "register";
        retrying("registerInstance", () -> naming.registerInstance(service, GROUP, instance));
        emit("REGISTERED");
        step = "hold";
        // Live until killed; the watchdog (HOLD_CAP_MS) is the safety cap.
        while (true) {
            Thread.sleep(60_000);
        }
    }

    private static void watch(String service, String ip, int port) throws Exception {
        BlockingQueue<List<Instance>> pushes = new LinkedBlockingQueue<>();
        NamingService naming = subscribedNamingService(service, pushes);

        step = "watch";
        boolean seen = false;
        while (true) {
            List<Instance> list = pushes.take(); // the watchdog bounds the total time
            boolean present = contains(list, ip, port);
            if (!seen && present) {
                seen = true;
                emit("SEEN");
            } else if (seen && !present) {
                emit("GONE");
                shutdownQuietly(naming);
                finish(0, null);
            }
        }
    }

    // ------------------------------------------------------------------ config modes

    private static void configScenario(String dataId, String group) throws Exception {
        BlockingQueue<String> notes = new LinkedBlockingQueue<>();
        step = "create_client";
        ConfigService cs = createConfigService();

        step = "get_absent";
        String absent = readConfig(cs, dataId, group);
        if (absent != null) {
            fail("get_absent: the config exists with content " + quote(absent));
        }
        emit("GET_ABSENT ok");

        step = "add_listener";
        cs.addListener(dataId, group, configListener(notes));

        step = "publish";
        retrying("publishConfig", () -> publishOrThrow(cs, dataId, group, "v1-java"));
        emit("PUBLISH ok");

        step = "get";
        readUntil(cs, dataId, group, "v1-java");
        emit("GET ok");

        // The listener must see v1 first: that proves its ConfigBatchListenRequest was answered,
        // so v2 below can only arrive through a server push (ConfigChangeNotifyRequest).
        step = "listen";
        if (awaitContent(notes, "v1-java", PUSH_WAIT_MS) == null) {
            fail("listen: the listener did not receive v1-java within " + PUSH_WAIT_MS + " ms");
        }
        retrying("publishConfig", () -> publishOrThrow(cs, dataId, group, "v2-java"));
        if (awaitContent(notes, "v2-java", PUSH_WAIT_MS) == null) {
            fail("listen: the listener did not receive v2-java within " + PUSH_WAIT_MS + " ms");
        }
        emit("LISTEN ok");

        step = "remove";
        if (!cs.removeConfig(dataId, group)) {
            fail("remove: removeConfig returned false");
        }
        emit("REMOVE ok");

        step = "get_removed";
        readUntil(cs, dataId, group, null);
        emit("GET_REMOVED ok");

        step = "shutdown";
        emit("CONFIG OK");
        shutdownQuietly(cs::shutDown);
        finish(0, null);
    }

    private static void configListen(String dataId, String group, String expected) throws Exception {
        BlockingQueue<String> notes = new LinkedBlockingQueue<>();
        step = "create_client";
        ConfigService cs = createConfigService();
        step = "add_listener";
        // addListener rings the listen loop, which sends ConfigBatchListenRequest at once on the
        // connection made by createConfigService; a second lets that request reach the server.
        cs.addListener(dataId, group, configListener(notes));
        Thread.sleep(1_000);
        emit("LISTENING");
        step = "listen";
        while (true) {
            String content = notes.take(); // the watchdog bounds the total time
            emit("GOT " + oneLine(content));
            if (content.equals(expected)) {
                shutdownQuietly(cs::shutDown);
                finish(0, null);
            }
        }
    }

    private static void configPublish(String dataId, String group, String content) throws Exception {
        step = "create_client";
        ConfigService cs = createConfigService();
        step = "publish";
        retrying("publishConfig", () -> publishOrThrow(cs, dataId, group, content));
        emit("PUBLISHED");
        shutdownQuietly(cs::shutDown);
        finish(0, null);
    }

    private static void configGet(String dataId, String group) throws Exception {
        step = "create_client";
        ConfigService cs = createConfigService();
        step = "get";
        String content = readConfig(cs, dataId, group);
        emit(content == null ? "ABSENT" : "VALUE " + oneLine(content));
        shutdownQuietly(cs::shutDown);
        finish(0, null);
    }

    /** publishConfig swallows every error and returns false; turn that into an exception for retrying. */
    private static void publishOrThrow(ConfigService cs, String dataId, String group, String content)
            throws NacosException {
        if (!cs.publishConfig(dataId, group, content)) {
            throw new NacosException(NacosException.SERVER_ERROR,
                    "publishConfig returned false (the client log on stderr has the server's answer)");
        }
    }

    /**
     * The content, or null when the server says "not found". The public getConfig returns null for
     * errorCode 300, but also, after logging a warning, for any other failure (it then falls back to
     * the local snapshot, which could even be an older value). So every read is confirmed with the
     * client's own server query (ClientWorker.getServerConfig, which throws on every error except
     * 300), reached by reflection; if that is not possible the public result is used alone.
     */
    private static String readConfig(ConfigService cs, String dataId, String group) throws Exception {
        String pub = cs.getConfig(dataId, group, GET_TIMEOUT_MS);
        Method query;
        Object worker;
        String tenant;
        try {
            worker = field(cs, "worker");
            tenant = (String) field(cs, "namespace");
            query = worker.getClass().getMethod("getServerConfig", String.class, String.class, String.class,
                    long.class, boolean.class);
        } catch (ReflectiveOperationException | RuntimeException e) {
            log("cannot confirm getConfig with the server query (" + describe(e) + "); using getConfig alone");
            return pub;
        }
        Object resp;
        try {
            resp = query.invoke(worker, dataId, group, tenant, GET_TIMEOUT_MS, false);
        } catch (InvocationTargetException e) {
            Throwable cause = e.getCause() == null ? e : e.getCause();
            throw new IllegalStateException("the server query failed (getConfig returned "
                    + (pub == null ? "null" : quote(pub)) + "): " + describe(cause), cause);
        }
        String strict = (String) resp.getClass().getMethod("getContent").invoke(resp);
        if (!Objects.equals(pub, strict)) {
            log("getConfig returned " + (pub == null ? "null" : quote(pub)) + " but the server query "
                    + (strict == null ? "null" : quote(strict)) + "; using the server query");
        }
        return strict;
    }

    private static Object field(Object target, String name) throws ReflectiveOperationException {
        Field f = target.getClass().getDeclaredField(name);
        f.setAccessible(true);
        return f.get(target);
    }

    /** Reads until the content equals want (null = absent), for up to READ_YOUR_WRITE_MS. */
    private static void readUntil(ConfigService cs, String dataId, String group, String want) throws Exception {
        long deadline = System.currentTimeMillis() + READ_YOUR_WRITE_MS;
        int tries = 0;
        while (true) {
            tries++;
            String got = readConfig(cs, dataId, group);
            if (Objects.equals(got, want)) {
                if (tries > 1) {
                    log("read returned the expected value only after " + tries + " reads");
                }
                return;
            }
            if (System.currentTimeMillis() >= deadline) {
                fail(step + ": got " + (got == null ? "null (absent)" : quote(got)) + ", want "
                        + (want == null ? "absent" : quote(want)) + " after " + tries + " reads");
            }
            // Each read is two identical ConfigQueryRequests, and the client lets identical
            // requests through at 5 per second (it waits up to 1 s for a permit, delaying the
            // listener's own queries too), so reads stay at two per second.
            Thread.sleep(400);
        }
    }

    private static AbstractListener configListener(BlockingQueue<String> notes) {
        return new AbstractListener() {
            @Override
            public void receiveConfigInfo(String configInfo) {
                // null when the config was removed; queued as "".
                log("config notify " + (configInfo == null ? "null" : quote(configInfo)));
                notes.add(configInfo == null ? "" : configInfo);
            }
        };
    }

    private static String awaitContent(BlockingQueue<String> notes, String want, long timeoutMs)
            throws InterruptedException {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (true) {
            long left = deadline - System.currentTimeMillis();
            if (left <= 0) {
                return null;
            }
            String c = notes.poll(left, TimeUnit.MILLISECONDS);
            if (c == null) {
                return null;
            }
            if (c.equals(want)) {
                return c;
            }
        }
    }

    private static String oneLine(String s) {
        return s.replace("\n", "\\n").replace("\r", "\\r");
    }

    private static String quote(String s) {
        return '"' + oneLine(s) + '"';
    }

    // ------------------------------------------------------------------ client setup

    private static Properties clientProperties() {
        String server = env("CAIRN_SERVER", "127.0.0.1:8848");
        String namespace = env("CAIRN_NAMESPACE", "");
        Properties p = new Properties();
        p.setProperty(PropertyKeyConst.SERVER_ADDR, server);
        if (!namespace.isEmpty()) {
            p.setProperty(PropertyKeyConst.NAMESPACE, namespace);
        }
        log("server=" + server + " namespace=" + (namespace.isEmpty() ? "(public)" : namespace)
                + " client=" + clientVersion());
        return p;
    }

    /**
     * A config client whose gRPC connection is up: the client connects lazily on its first request,
     * and getServerStatus makes that request's connection (polled for up to CONNECT_RETRY_MS).
     */
    private static ConfigService createConfigService() throws Exception {
        ConfigService cs = NacosFactory.createConfigService(clientProperties());
        long deadline = System.currentTimeMillis() + CONNECT_RETRY_MS;
        while (!"UP".equals(cs.getServerStatus())) {
            if (System.currentTimeMillis() >= deadline) {
                fail("config client not connected (getServerStatus DOWN) after " + CONNECT_RETRY_MS + " ms");
            }
            Thread.sleep(200);
        }
        return cs;
    }

    private static NamingService createNamingService() throws Exception {
        Properties p = clientProperties();
        p.setProperty(PropertyKeyConst.NAMING_LOAD_CACHE_AT_START, "false");
        // Deliver empty pushes to listeners (this is also the client default).
        p.setProperty(PropertyKeyConst.NAMING_PUSH_EMPTY_PROTECTION, "false");
        // The naming disk cache directory is derived from this client property.
        p.setProperty("JM.SNAPSHOT.PATH", System.getProperty("JM.SNAPSHOT.PATH"));
        return NamingFactory.createNamingService(p);
    }

    /** Must run before any Nacos or slf4j class is initialised (they read these in static initialisers). */
    private static void prepareEnvironment() {
        try {
            Path tmp = Files.createTempDirectory("cairn-nacos-harness-");
            Path logs = Files.createDirectories(tmp.resolve("logs"));
            Path snapshot = Files.createDirectories(tmp.resolve("snapshot"));
            System.setProperty("JM.LOG.PATH", logs.toString());
            System.setProperty("JM.SNAPSHOT.PATH", snapshot.toString());
            Runtime.getRuntime().addShutdownHook(new Thread(() -> deleteTree(tmp), "harness-tmp-cleanup"));
        } catch (IOException e) {
            throw new IllegalStateException("cannot create temp dir", e);
        }
        System.setProperty("nacos.logging.default.config.enabled", "false");
        System.setProperty("org.slf4j.simpleLogger.logFile", "System.err");
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", env("CAIRN_HARNESS_LOG", "warn"));
        System.setProperty("org.slf4j.simpleLogger.showDateTime", "true");
        System.setProperty("org.slf4j.simpleLogger.dateTimeFormat", "HH:mm:ss.SSS");
    }

    /** A naming client subscribed to the service (group GROUP); every push lands in pushes. */
    private static NamingService subscribedNamingService(String service, BlockingQueue<List<Instance>> pushes)
            throws Exception {
        step = "create_client";
        NamingService naming = createNamingService();
        step = "subscribe";
        EventListener listener = pushListener(pushes);
        retrying("subscribe", () -> naming.subscribe(service, GROUP, listener));
        return naming;
    }

    private static EventListener pushListener(BlockingQueue<List<Instance>> pushes) {
        return new EventListener() {
            @Override
            public void onEvent(Event event) {
                if (event instanceof NamingEvent) {
                    NamingEvent ne = (NamingEvent) event;
                    List<Instance> list = ne.getInstances() == null ? new ArrayList<>()
                            : new ArrayList<>(ne.getInstances());
                    log("push " + ne.getGroupName() + "@@" + ne.getServiceName() + " " + summarize(list));
                    pushes.add(list);
                } else {
                    log("ignoring non-naming event " + event);
                }
            }
        };
    }

    // ------------------------------------------------------------------ helpers

    @FunctionalInterface
    private interface Call {
        void run() throws Exception;
    }

    /** Retries a call while the client may still be connecting; gives up with FAIL after CONNECT_RETRY_MS. */
    private static void retrying(String what, Call call) throws Exception {
        long deadline = System.currentTimeMillis() + CONNECT_RETRY_MS;
        while (true) {
            try {
                call.run();
                return;
            } catch (Exception e) {
                if (System.currentTimeMillis() >= deadline) {
                    e.printStackTrace(System.err);
                    fail(what + " failed: " + describe(e));
                }
                log(what + " failed, retrying: " + describe(e));
                Thread.sleep(500);
            }
        }
    }

    private static List<Instance> awaitPush(BlockingQueue<List<Instance>> pushes, Predicate<List<Instance>> want,
            long timeoutMs) throws InterruptedException {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (true) {
            long left = deadline - System.currentTimeMillis();
            if (left <= 0) {
                return null;
            }
            List<Instance> list = pushes.poll(left, TimeUnit.MILLISECONDS);
            if (list == null) {
                return null;
            }
            if (want.test(list)) {
                return list;
            }
        }
    }

    private static Instance find(List<Instance> list, String ip, int port) {
        if (list == null) {
            return null;
        }
        for (Instance i : list) {
            if (ip.equals(i.getIp()) && i.getPort() == port) {
                return i;
            }
        }
        return null;
    }

    private static boolean contains(List<Instance> list, String ip, int port) {
        return find(list, ip, port) != null;
    }

    private static String summarize(List<Instance> list) {
        if (list == null) {
            return "null";
        }
        StringBuilder sb = new StringBuilder("[");
        for (Instance i : list) {
            if (sb.length() > 1) {
                sb.append(", ");
            }
            sb.append(i.getIp()).append(':').append(i.getPort()).append(" w=").append(i.getWeight())
                    .append(" c=").append(i.getClusterName()).append(" h=").append(i.isHealthy())
                    .append(" md=").append(i.getMetadata());
        }
        return sb.append(']').toString();
    }

    private static void shutdownQuietly(NamingService naming) {
        shutdownQuietly(naming::shutDown);
    }

    private static void shutdownQuietly(Call shutDown) {
        Thread t = new Thread(() -> {
            try {
                shutDown.run();
            } catch (Throwable e) {
                log("shutdown failed: " + describe(e));
            }
        }, "harness-shutdown");
        t.setDaemon(true);
        t.start();
        try {
            t.join(5_000);
        } catch (InterruptedException ignored) {
            Thread.currentThread().interrupt();
        }
    }

    private static void startWatchdog(long ms) {
        Thread t = new Thread(() -> {
            try {
                Thread.sleep(ms);
            } catch (InterruptedException e) {
                return;
            }
            fail("timeout");
        }, "harness-watchdog");
        t.setDaemon(true);
        t.start();
    }

    private static String env(String name, String def) {
        String v = System.getenv(name);
        return v == null ? def : v.trim();
    }

    private static int parsePort(String s) {
        try {
            int p = Integer.parseInt(s);
            if (p <= 0 || p > 65535) {
                throw new NumberFormatException();
            }
            return p;
        } catch (NumberFormatException e) {
            fail("bad port " + s);
            return -1; // unreachable
        }
    }

    private static void requireArgs(String[] args, int n) {
        if (args.length != n) {
            usage();
        }
    }

    private static void usage() {
        System.err.println("usage: Harness scenario <service> | hold <service> <ip> <port> | watch <service> <ip> <port>"
                + " | config-scenario <dataId> <group> | config-listen <dataId> <group> <expected>"
                + " | config-publish <dataId> <group> <content> | config-get <dataId> <group>");
        fail("usage");
    }

    private static String clientVersion() {
        Package p = NamingFactory.class.getPackage();
        String v = p == null ? null : p.getImplementationVersion();
        return v == null ? "unknown" : v;
    }

    private static String describe(Throwable t) {
        String msg = t.getClass().getSimpleName() + ": " + t.getMessage();
        return msg.replace('\n', ' ').replace('\r', ' ');
    }

    private static void log(String msg) {
        System.err.println("[harness] " + msg);
        System.err.flush();
    }

    private static void emit(String line) {
        synchronized (Harness.class) {
            if (FINISHED.get()) {
                return;
            }
            protocolOut.println(line);
            protocolOut.flush();
        }
    }

    private static void fail(String reason) {
        finish(1, "FAIL " + reason.replace('\n', ' ').replace('\r', ' '));
    }

    /**
     * Prints the final line (if any) exactly once and terminates the JVM. Client threads are non-daemon,
     * so System.exit is required; a daemon timer halts the JVM should shutdown hooks hang.
     */
    private static void finish(int code, String line) {
        synchronized (Harness.class) {
            if (FINISHED.get()) {
                // someone else is already terminating the JVM
                parkForever();
            }
            if (line != null) {
                protocolOut.println(line);
                protocolOut.flush();
            }
            FINISHED.set(true);
        }
        Thread halter = new Thread(() -> {
            try {
                Thread.sleep(5_000);
            } catch (InterruptedException ignored) {
                // fall through
            }
            Runtime.getRuntime().halt(code);
        }, "harness-halt");
        halter.setDaemon(true);
        halter.start();
        System.exit(code);
    }

    private static void parkForever() {
        while (true) {
            try {
                Thread.sleep(Long.MAX_VALUE);
            } catch (InterruptedException ignored) {
                // keep waiting for the JVM to exit
            }
        }
    }

    private static void deleteTree(Path root) {
        try (Stream<Path> walk = Files.walk(root)) {
            walk.sorted(Comparator.reverseOrder()).forEach(p -> {
                try {
                    Files.deleteIfExists(p);
                } catch (IOException ignored) {
                    // best effort
                }
            });
        } catch (IOException ignored) {
            // best effort
        }
    }
}
