// Prints Java's text for numbers, one answer per input line, so Go tests
// can compare connect/data's Java-compatible formatting with the JVM's.
// Input lines: "d <long bits>", "f <int bits>", "bd <unscaled> <scale>".
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.math.BigDecimal;
import java.math.BigInteger;

public class JavaText {
    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        StringBuilder out = new StringBuilder();
        for (String line; (line = in.readLine()) != null; ) {
            String[] p = line.split(" ");
            switch (p[0]) {
                case "d": out.append(Double.toString(Double.longBitsToDouble(Long.parseLong(p[1])))); break;
                case "f": out.append(Float.toString(Float.intBitsToFloat(Integer.parseInt(p[1])))); break;
                case "bd": out.append(new BigDecimal(new BigInteger(p[1]), Integer.parseInt(p[2])).toString()); break;
                default: out.append("?");
            }
            out.append('\n');
        }
        System.out.print(out);
    }
}
