import XCTest
import AVMAE

final class TensorTests: XCTestCase {
    func testZerosHasShapeCount() {
        XCTAssertEqual(Tensor(zeros: [2, 3, 4]).count, 24)
    }
}
