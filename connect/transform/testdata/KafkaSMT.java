// KafkaSMT writes testdata/kafka_smt.golden: it reads the input lines
// (the part before "=>"), applies Kafka's own transformation to the
// record they describe and prints the result through JsonConverter. Build
// it against Kafka's clients, connect-api, connect-json and
// connect-transforms sources (or jars) and Jackson.
import org.apache.kafka.connect.connector.ConnectRecord;
import org.apache.kafka.connect.data.SchemaAndValue;
import org.apache.kafka.connect.header.Header;
import org.apache.kafka.connect.json.JsonConverter;
import org.apache.kafka.connect.sink.SinkRecord;
import org.apache.kafka.connect.source.SourceRecord;
import org.apache.kafka.connect.transforms.Transformation;
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.util.*;

public class KafkaSMT {
    public static void main(String[] a) throws Exception {
        JsonConverter c = new JsonConverter();
        c.configure(Collections.singletonMap("schemas.enable", "true"), false);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line; (line = in.readLine()) != null; ) {
            if (line.isEmpty() || line.startsWith("#")) continue;
            String[] p = line.split("\t", -1);
            String out;
            try {
                Map<String, String> props = new HashMap<>();
                if (!p[1].isEmpty()) for (String kv : p[1].split(";")) { String[] x = kv.split("=", 2); props.put(x[0], x[1]); }
                @SuppressWarnings({"unchecked", "rawtypes"})
                Transformation t = (Transformation) Class.forName("org.apache.kafka.connect.transforms." + p[0]).getDeclaredConstructor().newInstance();
                t.configure(props);
                SchemaAndValue k = c.toConnectData("t", p[5].equals("null") ? null : p[5].getBytes(StandardCharsets.UTF_8));
                SchemaAndValue v = c.toConnectData("t", p[6].equals("null") ? null : p[6].getBytes(StandardCharsets.UTF_8));
                Integer part = p[3].equals("-1") ? null : Integer.valueOf(p[3]);
                Long ts = p[4].equals("-1") ? null : Long.valueOf(p[4]);
                ConnectRecord r;
                if (p[7].equals("sink")) r = new SinkRecord(p[2], part == null ? 0 : part, k.schema(), k.value(), v.schema(), v.value(), 42L, ts, org.apache.kafka.common.record.TimestampType.CREATE_TIME);
                else r = new SourceRecord(null, null, p[2], part, k.schema(), k.value(), v.schema(), v.value(), ts);
                if (p.length > 8 && !p[8].isEmpty()) for (String h : p[8].split(";")) r.headers().addString(h.split("=", 2)[0], h.split("=", 2)[1]);
                ConnectRecord o = (ConnectRecord) t.apply(r);
                if (o == null) out = "DROPPED";
                else {
                    StringBuilder sb = new StringBuilder();
                    sb.append(o.topic()).append('\t').append(o.kafkaPartition()).append('\t').append(o.timestamp()).append('\t');
                    byte[] kb = c.fromConnectData("t", o.keySchema(), o.key());
                    byte[] vb = c.fromConnectData("t", o.valueSchema(), o.value());
                    sb.append(kb == null ? "null" : new String(kb, StandardCharsets.UTF_8)).append('\t');
                    sb.append(vb == null ? "null" : new String(vb, StandardCharsets.UTF_8)).append('\t');
                    List<String> hs = new ArrayList<>();
                    for (Object ho : o.headers()) { Header h = (Header) ho; {
                        byte[] hb = c.fromConnectHeader("t", h.key(), h.schema(), h.value());
                        hs.add(h.key() + "=" + (hb == null ? "null" : new String(hb, StandardCharsets.UTF_8)));
                    }}
                    sb.append(String.join(";", hs));
                    out = sb.toString();
                }
            } catch (Exception e) {
                out = "ERR";
            }
            System.out.println(line + "\t=>\t" + out);
        }
    }
}
