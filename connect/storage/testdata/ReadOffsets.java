// Reads a standalone offsets file as Kafka Connect's FileOffsetBackingStore
// loads it and prints each entry as "key = value", sorted. Run:
// java ReadOffsets.java FILE
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.util.*;

public class ReadOffsets {
    public static void main(String[] args) throws Exception {
        try (ObjectInputStream is = new ObjectInputStream(new FileInputStream(args[0]))) {
            Object obj = is.readObject();
            if (!(obj instanceof HashMap))
                throw new IllegalStateException("Expected HashMap but found " + obj.getClass());
            @SuppressWarnings("unchecked")
            Map<byte[], byte[]> raw = (Map<byte[], byte[]>) obj;
            List<String> lines = new ArrayList<>();
            for (Map.Entry<byte[], byte[]> e : raw.entrySet())
                lines.add(new String(e.getKey(), StandardCharsets.UTF_8) + " = " + new String(e.getValue(), StandardCharsets.UTF_8));
            Collections.sort(lines);
            for (String l : lines)
                System.out.println(l);
        }
    }
}
