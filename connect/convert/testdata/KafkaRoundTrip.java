// KafkaRoundTrip writes testdata/kafka_roundtrip.golden: for each line
// "props<TAB>input" on stdin, what Kafka's JsonConverter writes after
// reading input (toConnectData then fromConnectData), or ERR. Build it as
// KafkaGolden.java says.
import org.apache.kafka.connect.data.SchemaAndValue;
import org.apache.kafka.connect.json.JsonConverter;
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.util.*;

public class KafkaRoundTrip {
    public static void main(String[] a) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line; (line = in.readLine()) != null; ) {
            if (line.isEmpty() || line.startsWith("#")) continue;
            String[] p = line.split("\t", 2);
            Map<String, Object> m = new HashMap<>();
            if (!p[0].equals("-")) for (String kv : p[0].split(",")) { String[] x = kv.split("=", 2); m.put(x[0], x[1]); }
            JsonConverter c = new JsonConverter();
            c.configure(m, false);
            String out;
            try {
                SchemaAndValue sv = c.toConnectData("t", p[1].getBytes(StandardCharsets.UTF_8));
                byte[] b = c.fromConnectData("t", sv.schema(), sv.value());
                out = b == null ? "<null>" : new String(b, StandardCharsets.UTF_8);
            } catch (Exception e) {
                out = "ERR";
            }
            System.out.println(line + "\t" + out);
        }
    }
}
