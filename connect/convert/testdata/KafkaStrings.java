// KafkaStrings writes testdata/kafka_strings.golden: each stdin line is a
// JsonConverter envelope whose value Kafka's StringConverter then writes.
// Run with -Duser.timezone=UTC; build it as KafkaGolden.java says.
import org.apache.kafka.connect.data.SchemaAndValue;
import org.apache.kafka.connect.json.JsonConverter;
import org.apache.kafka.connect.storage.StringConverter;
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.util.*;

public class KafkaStrings {
    public static void main(String[] a) throws Exception {
        JsonConverter c = new JsonConverter();
        c.configure(Collections.singletonMap("schemas.enable", "true"), false);
        StringConverter s = new StringConverter();
        s.configure(Collections.emptyMap(), false);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line; (line = in.readLine()) != null; ) {
            if (line.startsWith("#")) continue;
            String out;
            try {
                SchemaAndValue sv = c.toConnectData("t", line.getBytes(StandardCharsets.UTF_8));
                byte[] b = s.fromConnectData("t", sv.schema(), sv.value());
                out = b == null ? "null" : new String(b, StandardCharsets.UTF_8);
            } catch (Exception e) {
                out = "ERR";
            }
            System.out.println(line + "\t=>\t" + out);
        }
    }
}
