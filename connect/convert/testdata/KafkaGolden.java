// KafkaGolden writes testdata/kafka_jsonconverter.golden with Kafka's own
// JsonConverter. To regenerate: compile it against Kafka's clients,
// connect-api and connect-json sources (or jars) and Jackson, run it, and
// prepend the three comment lines. TestJSONFromConnectGolden builds the
// same cases by name.
import org.apache.kafka.connect.data.*;
import org.apache.kafka.connect.json.JsonConverter;
import java.math.BigDecimal;
import java.util.*;

public class KafkaGolden {
    static JsonConverter conv(String... kv) {
        Map<String, Object> m = new HashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put(kv[i], kv[i + 1]);
        JsonConverter c = new JsonConverter();
        c.configure(m, false);
        return c;
    }
    static void p(String name, JsonConverter c, Schema s, Object v) {
        byte[] b = c.fromConnectData("t", s, v);
        System.out.println(name + "\t" + (b == null ? "<null>" : new String(b, java.nio.charset.StandardCharsets.UTF_8)));
    }
    public static void main(String[] a) throws Exception {
        Schema person = SchemaBuilder.struct().name("com.example.Person").field("id", Schema.INT32_SCHEMA).field("name", Schema.OPTIONAL_STRING_SCHEMA).build();
        Schema withDefault = SchemaBuilder.string().optional().defaultValue("default").build();
        JsonConverter c = conv();
        JsonConverter plain = conv("schemas.enable", "false");
        p("quickstart line", c, Schema.STRING_SCHEMA, "foo");
        p("struct", c, person, new Struct(person).put("id", 1).put("name", "ann"));
        p("struct null optional field", c, person, new Struct(person).put("id", 2));
        Map<String, Object> sl = new LinkedHashMap<>(); sl.put("a", 1L); sl.put("b", Arrays.asList(true, null));
        p("schemaless map in envelope", c, null, sl);
        p("schemas disabled", plain, person, new Struct(person).put("id", 1));
        p("decimal base64", c, Decimal.schema(2), new BigDecimal("1.56"));
        p("decimal numeric keeps trailing zeros", conv("decimal.format", "numeric", "schemas.enable", "false"), Decimal.schema(4), new BigDecimal("1.5600"));
        p("decimal numeric tiny", conv("decimal.format", "NUMERIC", "schemas.enable", "false"), Decimal.schema(9), new BigDecimal("1E-9"));
        Map<Integer, String> im = new LinkedHashMap<>(); im.put(1, "a"); im.put(2, "b");
        p("int-keyed map", c, SchemaBuilder.map(Schema.INT32_SCHEMA, Schema.STRING_SCHEMA).build(), im);
        p("array", plain, SchemaBuilder.array(Schema.INT64_SCHEMA).build(), Arrays.asList(1L, -2L));
        p("float32", plain, Schema.FLOAT32_SCHEMA, 12.34f);
        p("float64 whole", plain, Schema.FLOAT64_SCHEMA, 100.0);
        p("float64 large", plain, Schema.FLOAT64_SCHEMA, 1e20);
        p("float64 small", plain, Schema.FLOAT64_SCHEMA, 0.0001);
        p("float64 nan", plain, Schema.FLOAT64_SCHEMA, Double.NaN);
        p("bytes", plain, Schema.BYTES_SCHEMA, "hi!".getBytes());
        p("escapes as jackson", plain, Schema.STRING_SCHEMA, "a\"b\\c\n\u0001\u00e9/<");
        p("date", c, org.apache.kafka.connect.data.Date.SCHEMA, new java.util.Date(10L * 86400000L));
        p("timestamp", plain, Timestamp.SCHEMA, new java.util.Date(1700000000123L));
        p("null replaced by default", c, withDefault, null);
        p("null kept without replace", conv("replace.null.with.default", "false"), withDefault, null);
        p("schema metadata", c, SchemaBuilder.bool().name("bool").version(3).doc("the documentation").parameter("foo", "bar").build(), true);
        // Beyond the Go golden list: nested and logical types in one struct.
        Schema inner = SchemaBuilder.struct().name("inner").field("when", Timestamp.builder().optional().build()).field("amount", Decimal.schema(3)).build();
        Schema outer = SchemaBuilder.struct().name("outer")
            .field("tags", SchemaBuilder.array(Schema.STRING_SCHEMA).build())
            .field("scores", SchemaBuilder.map(Schema.STRING_SCHEMA, Schema.FLOAT64_SCHEMA).build())
            .field("byid", SchemaBuilder.map(Schema.INT64_SCHEMA, inner).build())
            .field("blob", Schema.OPTIONAL_BYTES_SCHEMA)
            .field("n", SchemaBuilder.int16().optional().defaultValue((short) 7).build())
            .field("t", Time.SCHEMA)
            .field("f", Schema.OPTIONAL_FLOAT32_SCHEMA)
            .build();
        Struct in = new Struct(inner).put("when", new java.util.Date(1234)).put("amount", new BigDecimal("-12.345"));
        Map<String, Double> sc = new LinkedHashMap<>(); sc.put("x", 1.5);
        Map<Long, Struct> by = new LinkedHashMap<>(); by.put(9L, in);
        Struct v = new Struct(outer).put("tags", Arrays.asList("a", "b")).put("scores", sc).put("byid", by)
            .put("blob", new byte[]{0, 1, 2}).put("t", new java.util.Date(3723004)).put("f", 1.0e-7f);
        p("nested", c, outer, v);
        p("nested numeric", conv("decimal.format", "NUMERIC"), outer, v);
    }
}
