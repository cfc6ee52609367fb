// Prints SimpleDateFormat's answers in UTC (as Kafka's TimestampConverter
// and TimestampRouter set it) and an English locale (a usual JVM default),
// one per input line, for Go tests to compare.
// Input lines, tab-separated: "f pattern millis" formats, "p pattern text"
// parses (printing the millis, or ERR).
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.text.SimpleDateFormat;
import java.util.Date;
import java.util.Locale;
import java.util.TimeZone;

public class JavaDates {
    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, "UTF-8"));
        StringBuilder out = new StringBuilder();
        for (String line; (line = in.readLine()) != null; ) {
            String[] p = line.split("\t", 3);
            SimpleDateFormat f = new SimpleDateFormat(p[1], Locale.US);
            f.setTimeZone(TimeZone.getTimeZone("UTC"));
            if (p[0].equals("f")) {
                out.append(f.format(new Date(Long.parseLong(p[2]))));
            } else {
                try {
                    out.append(f.parse(p[2]).getTime());
                } catch (Exception e) {
                    out.append("ERR");
                }
            }
            out.append('\n');
        }
        System.out.print(out);
    }
}
