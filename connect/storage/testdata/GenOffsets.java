// Writes the Kafka Connect standalone offsets files under testdata/ the way
// FileOffsetBackingStore.save does (ObjectOutputStream of a HashMap of the
// offsets topic's key and value bytes). Run: java GenOffsets.java testdata
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.util.*;

public class GenOffsets {
    static void write(String path, Map<byte[], byte[]> raw) throws IOException {
        try (ObjectOutputStream os = new ObjectOutputStream(new FileOutputStream(path))) {
            os.writeObject(raw);
        }
    }

    static byte[] b(String s) { return s.getBytes(StandardCharsets.UTF_8); }

    public static void main(String[] args) throws IOException {
        Map<byte[], byte[]> two = new HashMap<>();
        two.put(b("[\"local-file-source\",{\"filename\":\"test.txt\"}]"), b("{\"position\":42}"));
        two.put(b("[\"other\",{\"z\":1,\"a\":\"x\"}]"), b("{\"offset\":7}"));
        write(args[0] + "/kafka-two.offsets", two);
        write(args[0] + "/kafka-empty.offsets", new HashMap<>());
        Map<byte[], byte[]> many = new HashMap<>();
        for (int i = 0; i < 13; i++)
            many.put(b("[\"many\",{\"p\":" + i + "}]"), b("{\"o\":" + i + "}"));
        write(args[0] + "/kafka-13.offsets", many);
    }
}
