// KafkaHeaders writes testdata/kafka_headers.golden: each stdin line is a
// header value read by Kafka's SimpleHeaderConverter, printed as a
// JsonConverter envelope and written back. Build it as KafkaGolden.java says.
import org.apache.kafka.connect.data.SchemaAndValue;
import org.apache.kafka.connect.json.JsonConverter;
import org.apache.kafka.connect.storage.SimpleHeaderConverter;
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.util.*;

public class KafkaHeaders {
    public static void main(String[] a) throws Exception {
        JsonConverter c = new JsonConverter();
        c.configure(Collections.singletonMap("schemas.enable", "true"), false);
        SimpleHeaderConverter h = new SimpleHeaderConverter();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line; (line = in.readLine()) != null; ) {
            if (line.startsWith("#")) continue;
            String out;
            try {
                SchemaAndValue sv = h.toConnectHeader("t", "h", line.getBytes(StandardCharsets.UTF_8));
                byte[] b = c.fromConnectData("t", sv.schema(), sv.value());
                byte[] back = h.fromConnectHeader("t", "h", sv.schema(), sv.value());
                out = (b == null ? "null" : new String(b, StandardCharsets.UTF_8)) + "\t" + (back == null ? "null" : new String(back, StandardCharsets.UTF_8));
            } catch (Exception e) {
                out = "ERR";
            }
            System.out.println(line + "\t=>\t" + out);
        }
    }
}
