// One OpenSearch node in this JVM, for filesearch's tests: HTTP on 127.0.0.1 at a free port, single-node
// discovery, no security plugin, data and logs under --home. Plugins load from the class path
// (transport-netty4, analysis-common, k-NN, neural-search), so no plugin installation step is needed.
// Prints "url http://127.0.0.1:PORT" once the cluster is green and writes the URL to --url-file;
// stops cleanly on SIGTERM/SIGINT, or when stdin reaches its end with --exit-on-stdin-eof.
package filesearch.testnode;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.opensearch.action.admin.cluster.health.ClusterHealthResponse;
import org.opensearch.common.settings.Settings;
import org.opensearch.common.unit.TimeValue;
import org.opensearch.env.Environment;
import org.opensearch.http.HttpServerTransport;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;

public final class TestNode extends Node {
    private TestNode(Environment environment, Collection<Class<? extends Plugin>> plugins) {
        // forbidPrivateIndexSettings = true: behave like a production node
        super(environment, plugins, true);
    }

    private static final class Options {
        Path home;
        Path urlFile;
        String clusterName = "filesearch-test";
        boolean exitOnStdinEof = false;
        String httpPort = "0";  // 0: a free port
        List<String> settings = new ArrayList<>();  // extra node settings, key=value
    }

    private static Options parse(String[] args) {
        Options options = new Options();
        for (int i = 0; i < args.length; ++i) {
            switch (args[i]) {
                case "--home" -> options.home = Path.of(args[++i]).toAbsolutePath();
                case "--url-file" -> options.urlFile = Path.of(args[++i]).toAbsolutePath();
                case "--cluster-name" -> options.clusterName = args[++i];
                case "--exit-on-stdin-eof" -> options.exitOnStdinEof = true;
                case "--http-port" -> options.httpPort = args[++i];
                case "--setting" -> options.settings.add(args[++i]);
                default -> throw new IllegalArgumentException("unknown argument " + args[i]
                    + " (usage: --home DIR [--url-file FILE] [--cluster-name NAME] [--http-port N]"
                    + " [--setting key=value]... [--exit-on-stdin-eof])");
            }
        }
        if (options.home == null) throw new IllegalArgumentException("--home DIR is required");
        return options;
    }

    @SuppressWarnings("unchecked")
    private static List<Class<? extends Plugin>> plugins() throws ClassNotFoundException {
        List<Class<? extends Plugin>> plugins = new ArrayList<>();
        plugins.add(org.opensearch.transport.Netty4Plugin.class);
        plugins.add(org.opensearch.analysis.common.CommonAnalysisPlugin.class);
        // k-NN comes from the plugin zip unpacked beside the launcher; loaded by name so the launcher
        // compiles without it on the compile class path.
        plugins.add((Class<? extends Plugin>) Class.forName("org.opensearch.knn.plugin.KNNPlugin"));
        // neural-search (the `hybrid` query and its search pipeline processors), the same way.
        plugins.add((Class<? extends Plugin>) Class.forName("org.opensearch.neuralsearch.plugin.NeuralSearch"));
        return plugins;
    }

    public static void main(String[] args) throws Exception {
        Options options = parse(args);
        Path config = Files.createDirectories(options.home.resolve("config"));
        Settings.Builder builder = Settings.builder()
            .put("cluster.name", options.clusterName)
            .put("node.name", "node-0")
            .put("path.home", options.home.toString())
            .put("path.data", options.home.resolve("data").toString())
            .put("path.logs", options.home.resolve("logs").toString())
            .put("network.host", "127.0.0.1")
            .put("http.port", options.httpPort)
            .put("transport.port", "0")
            .put("discovery.type", "single-node")
            // tests run on shared machines whose disks may be nearly full
            .put("cluster.routing.allocation.disk.threshold_enabled", false);
        for (String kv : options.settings) {
            int eq = kv.indexOf('=');
            if (eq <= 0) throw new IllegalArgumentException("--setting wants key=value, got " + kv);
            builder.put(kv.substring(0, eq), kv.substring(eq + 1));
        }
        Settings settings = builder.build();
        Environment environment = InternalSettingsPreparer.prepareEnvironment(settings, Map.of(), config, () -> "node-0");

        TestNode node = new TestNode(environment, plugins());
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                node.awaitClose(20, TimeUnit.SECONDS);
            } catch (IOException | InterruptedException e) {
                System.err.println("test node: close failed: " + e);
            }
        }, "test-node-shutdown"));
        node.start();

        // Yellow: every primary is assigned. A restarted node holds indexes whose replicas (1 by
        // default) have no second node to go to, so green never comes.
        ClusterHealthResponse health = node.client().admin().cluster().prepareHealth()
            .setWaitForYellowStatus().setTimeout(TimeValue.timeValueSeconds(120)).get();
        if (health.isTimedOut()) {
            System.err.println("test node: cluster not yellow after 120 s: " + health.getStatus());
            System.exit(1);
        }
        int port = node.injector().getInstance(HttpServerTransport.class).boundAddress().publishAddress().getPort();
        String url = "http://127.0.0.1:" + port;
        if (options.urlFile != null) {
            Path tmp = options.urlFile.resolveSibling(options.urlFile.getFileName() + ".tmp");
            Files.writeString(tmp, url + "\n", StandardCharsets.UTF_8);
            Files.move(tmp, options.urlFile, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        }
        System.out.println("url " + url);
        System.out.flush();

        if (options.exitOnStdinEof) {
            InputStream in = System.in;
            byte[] buffer = new byte[256];
            while (in.read(buffer) >= 0) {
                // drain until the parent closes our stdin
            }
            System.exit(0);
        }
        Thread.currentThread().join(); // the shutdown hook ends the process
    }
}
